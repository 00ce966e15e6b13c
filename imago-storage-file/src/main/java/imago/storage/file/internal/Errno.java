package imago.storage.file.internal;

/** Linux {@code errno} values the file storage tells apart, and their text for messages. */
final class Errno {
    static final int EPERM = 1;
    static final int ENOENT = 2;
    static final int EINTR = 4;
    static final int ENXIO = 6;
    static final int EAGAIN = 11;
    static final int EACCES = 13;
    static final int ENODEV = 19;
    static final int EISDIR = 21;
    static final int EINVAL = 22;
    static final int EFBIG = 27;
    static final int ENOLCK = 37;
    static final int ENOSYS = 38;
    static final int EOPNOTSUPP = 95;

    private Errno() {
    }

    /** {@code "errno 5 (EIO: Input/output error)"}, or just the number for the rare ones. */
    static String describe(int errno) {
        String text = switch (errno) {
            case EPERM -> "EPERM: Operation not permitted";
            case ENOENT -> "ENOENT: No such file or directory";
            case EINTR -> "EINTR: Interrupted system call";
            case 5 -> "EIO: Input/output error";
            case ENXIO -> "ENXIO: No such device or address";
            case 9 -> "EBADF: Bad file descriptor";
            case EAGAIN -> "EAGAIN: Resource temporarily unavailable";
            case 12 -> "ENOMEM: Cannot allocate memory";
            case EACCES -> "EACCES: Permission denied";
            case 16 -> "EBUSY: Device or resource busy";
            case ENODEV -> "ENODEV: No such device";
            case EISDIR -> "EISDIR: Is a directory";
            case EINVAL -> "EINVAL: Invalid argument";
            case 26 -> "ETXTBSY: Text file busy";
            case EFBIG -> "EFBIG: File too large";
            case 28 -> "ENOSPC: No space left on device";
            case 29 -> "ESPIPE: Illegal seek";
            case 30 -> "EROFS: Read-only file system";
            case ENOLCK -> "ENOLCK: No locks available";
            case ENOSYS -> "ENOSYS: Function not implemented";
            case 40 -> "ELOOP: Too many levels of symbolic links";
            case EOPNOTSUPP -> "EOPNOTSUPP: Operation not supported";
            case 122 -> "EDQUOT: Disk quota exceeded";
            default -> null;
        };
        return text == null ? "errno " + errno : "errno " + errno + " (" + text + ")";
    }
}
