package imago.storage.file.internal;

import static imago.storage.file.internal.Failures.failure;

import imago.api.ImageLockedException;
import java.io.IOException;

/**
 * QEMU's image locks on a native descriptor: the OFD byte-range locks QEMU 7.2 takes, with
 * {@code flock} and then no lock as fallbacks, and QEMU's messages when another process holds the file.
 */
final class ImageLocks {
    /**
     * The file storage's logger (these messages have always been logged under its name), made on the first
     * message: setting up slf4j takes ~30 ms of CPU, which every command that opens a file paid for two
     * debug messages that are seldom logged.
     */
    private static final class Log {
        static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(ImageLocks.class);
    }

    // qemu's permission bits (include/block/block-common.h, QEMU 7.2: GRAPH_MOD is gone, four remain)
    static final int PERM_CONSISTENT_READ = 0x01;
    static final int PERM_WRITE = 0x02;
    static final int PERM_WRITE_UNCHANGED = 0x04;
    static final int PERM_RESIZE = 0x08;
    static final int PERM_COUNT = 4;
    private static final String[] PERM_NAMES = {"consistent read", "write", "write unchanged", "resize"};
    /** qemu's lock bytes: {@code 100 + i} for permission bit {@code i} used, {@code 200 + i} for it not shared. */
    static final int LOCK_PERM_BASE = 100;
    static final int LOCK_SHARED_BASE = 200;
    /**
     * What qemu's qcow2 (or any format) driver asks of its file when opened writable (qemu-io, qemu-img
     * commands that write, a running VM): a format driver may rewrite metadata and grow the file.
     */
    static final int WRITABLE_PERM = PERM_CONSISTENT_READ | PERM_WRITE | PERM_RESIZE;
    /** ... and read-only (qemu-img info, convert's source). */
    static final int READ_ONLY_PERM = PERM_CONSISTENT_READ;
    /** Both let others read and write unchanged data, never write or resize: the metadata must stay consistent. */
    static final int SHARED_PERM = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;
    /**
     * What qemu-img and qemu-io take on a raw image's file opened writable: QEMU's raw driver passes its user's
     * permissions through, and they write without resizing.
     */
    static final int WRITABLE_DATA_PERM = PERM_CONSISTENT_READ | PERM_WRITE;
    /** ... and what they share on it: everything, as a raw file has no metadata to keep consistent. */
    static final int SHARED_DATA_PERM = (1 << PERM_COUNT) - 1;

    private ImageLocks() {
    }

    /**
     * Takes qemu's image locks (QEMU 7.2 {@code block/file-posix.c}, {@code raw_apply_lock_bytes} and
     * {@code raw_check_lock_bytes}), so imago, qemu and qemu-img see each other. Each permission bit
     * {@code i} a holder uses is a shared OFD lock on byte {@code 100 + i}; each one it does not let
     * others use, a shared OFD lock on byte {@code 200 + i}. As qemu does, the locks are taken first and
     * then checked: nobody else may hold {@code 200 + i} for a permission we use, nor {@code 100 + i}
     * for one we do not share. Taking before checking means that of two racing opens at least one sees
     * the other. OFD locks belong to the open file description, so a second open conflicts even in
     * this JVM; closing the descriptor releases them, also after a failed open.
     *
     * <p>With {@code shareWrites} (a raw image), takes what qemu-img and qemu-io take there: a writable open uses
     * read and write but not resize (unless it {@code resizes}: qemu-img resize), and every open shares all four, so only a holder that keeps writers out (a
     * qcow2 open of the same file, a {@code qemu-img convert} source) refuses a writer.
     *
     * <p>Where the kernel or file system has no OFD locks, falls back to {@code flock} (which only other
     * imago processes see), and where that fails too, opens unlocked, as qemu's {@code locking=auto}.
     */
    static void lockNative(String name, int fd, boolean writable, boolean shareWrites, boolean resizes)
            throws IOException {
        int perm = !writable ? READ_ONLY_PERM : !shareWrites ? WRITABLE_PERM
                : resizes ? WRITABLE_DATA_PERM | PERM_RESIZE : WRITABLE_DATA_PERM;
        int shared = shareWrites ? SHARED_DATA_PERM : SHARED_PERM;
        int lockByte = -1;
        try {
            for (int i = 0; i < PERM_COUNT; i++) {
                if ((perm & (1 << i)) != 0) {
                    lockByte = LOCK_PERM_BASE + i;
                    LibcLocks.ofdSetLock(fd, LibcLocks.F_RDLCK, lockByte, 1);
                }
            }
            for (int i = 0; i < PERM_COUNT; i++) {
                if ((shared & (1 << i)) == 0) {
                    lockByte = LOCK_SHARED_BASE + i;
                    LibcLocks.ofdSetLock(fd, LibcLocks.F_RDLCK, lockByte, 1);
                }
            }
        } catch (ErrnoException e) {
            switch (e.errno()) {
                // a whole-file write lock, e.g. FileChannel.lock of an imago without native access
                case Errno.EAGAIN, Errno.EACCES -> throw new ImageLockedException(name,
                        lockedMessage(name, "Failed to lock byte " + lockByte));
                case Errno.EINVAL, Errno.ENOLCK, Errno.EOPNOTSUPP, Errno.ENOSYS -> {
                    Log.LOG.debug("{}: OFD locks are not available ({}); using flock",
                            name, Errno.describe(e.errno()));
                    releaseOfdLocks(fd);
                    lockFlock(name, fd, writable && !shareWrites);
                    return;
                }
                default -> throw failure(name, "fcntl(F_OFD_SETLK) of byte " + lockByte, e);
            }
        }
        try {
            for (int i = 0; i < PERM_COUNT; i++) {
                if ((perm & (1 << i)) != 0) {
                    lockByte = LOCK_SHARED_BASE + i;
                    if (LibcLocks.ofdLocked(fd, lockByte, 1)) {
                        throw new ImageLockedException(name,
                                lockedMessage(name, "Failed to get \"" + PERM_NAMES[i] + "\" lock"));
                    }
                }
            }
            for (int i = 0; i < PERM_COUNT; i++) {
                if ((shared & (1 << i)) == 0) {
                    lockByte = LOCK_PERM_BASE + i;
                    if (LibcLocks.ofdLocked(fd, lockByte, 1)) {
                        throw new ImageLockedException(name,
                                lockedMessage(name, "Failed to get shared \"" + PERM_NAMES[i] + "\" lock"));
                    }
                }
            }
        } catch (ErrnoException e) {
            throw failure(name, "fcntl(F_OFD_GETLK) of byte " + lockByte, e);
        }
    }

    /** Best effort: drops the lock bytes taken before OFD locking failed. */
    private static void releaseOfdLocks(int fd) {
        try {
            LibcLocks.ofdSetLock(fd, LibcLocks.F_UNLCK, LOCK_PERM_BASE, LOCK_SHARED_BASE + PERM_COUNT - LOCK_PERM_BASE);
        } catch (ErrnoException ignored) {
            // nothing was locked, or the descriptor's close releases it
        }
    }

    /** The fallback without OFD locks: excludes other imago processes only; {@code writable} takes it exclusively. */
    static void lockFlock(String name, int fd, boolean writable) throws IOException {
        // flock locks belong to the open file description: a second open conflicts even in this JVM
        try {
            LibcLocks.flock(fd, (writable ? LibcLocks.LOCK_EX : LibcLocks.LOCK_SH) | LibcLocks.LOCK_NB);
        } catch (ErrnoException e) {
            switch (e.errno()) {
                case Errno.EAGAIN -> throw locked(name, writable);
                case Errno.ENOLCK, Errno.EOPNOTSUPP, Errno.ENOSYS, Errno.EINVAL ->
                    // the file system cannot lock (e.g. NFS without lockd): open unlocked, as qemu does
                    Log.LOG.debug("{}: the file system cannot lock ({}); opened unlocked",
                            name, Errno.describe(e.errno()));
                default -> throw failure(name, "flock", e);
            }
        }
    }

    /** qemu's wording, so users recognise it: what a writable or read-only open meets when a writer holds the file. */
    static ImageLockedException locked(String name, boolean writable) {
        return new ImageLockedException(name,
                lockedMessage(name, writable ? "Failed to get \"write\" lock" : "Failed to get shared \"write\" lock"));
    }

    /** qemu's error and its hint, on one line. */
    private static String lockedMessage(String name, String error) {
        return error + ". Is another process using the image [" + name + "]?";
    }
}
