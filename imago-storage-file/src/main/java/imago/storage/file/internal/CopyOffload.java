package imago.storage.file.internal;

import java.io.IOException;

/**
 * Copies between two natively opened files with {@code copy_file_range}, so the bytes never enter this process's
 * memory. Where the kernel or libc has no such call, or the file system refuses it, that is remembered and the
 * offload is no longer tried; everything else it leaves uncopied is for the caller to copy through a buffer.
 */
final class CopyOffload {
    private final FileHandle handle;
    /** The native descriptor, or -1 without native access. */
    private final int fd;
    // set once, read without locking
    private volatile boolean refused;

    /** The offload of the file behind {@code handle}; {@code direct} (O_DIRECT) files never offload. */
    CopyOffload(FileHandle handle, int fd, boolean direct) {
        this.handle = handle;
        this.fd = fd;
        this.refused = direct;
    }

    /** Whether copies to or from this file may be handed to the kernel. */
    boolean offloads() {
        return fd >= 0 && !refused;
    }

    /**
     * Copies what {@code copy_file_range} will of {@code length} bytes at {@code sourceOffset} in {@code source}'s
     * file to {@code offset} in this one; returns how many bytes, from the start. Stops early where the source ends
     * (the rest reads as zeroes) or at the first failure, which the buffered copy meets again and reports as the
     * read or write it is.
     */
    long copyFrom(CopyOffload source, long sourceOffset, long length, long offset) throws IOException {
        if (!LibcCopy.available()) {
            refused = true;
            return 0;
        }
        long done = 0;
        source.handle.enter();
        try {
            handle.enter();
            try {
                while (done < length) {
                    long n = LibcCopy.copyFileRange(source.fd, sourceOffset + done, fd, offset + done, length - done);
                    if (n == 0) {
                        break; // the source ends here: the rest reads as zeroes
                    }
                    done += n;
                }
            } catch (ErrnoException e) {
                if (e.errno() == Errno.ENOSYS || e.errno() == Errno.EOPNOTSUPP) {
                    refused = true;
                }
                // EXDEV, EINVAL (not regular files, overlapping ranges), or a real error
            } finally {
                handle.exit();
            }
        } finally {
            source.handle.exit();
        }
        return done;
    }
}
