package imago.storage.file.internal;

import static imago.storage.file.internal.Failures.describe;
import static imago.storage.file.internal.Failures.message;

import imago.api.ImageException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Buffered I/O through the storage's {@link FileChannel}, which keeps the JDK's handling of virtual
 * threads that block in file I/O. A thread interrupted during channel I/O gets an
 * {@link InterruptedIOException}; the JDK closes the channel in that case, and this reopens it (on the
 * same descriptor) for the other threads.
 */
final class ChannelIo {
    private final FileHandle handle;
    private final String name;
    /** The native descriptor, or -1 without native access. */
    private final int fd;
    private final Path path;
    private final boolean readOnly;
    /** Serialises reopening the channel after an interrupt against close. */
    private final ReentrantLock channelLock = new ReentrantLock();
    private volatile FileChannel channel;

    ChannelIo(FileHandle handle, Path path, boolean readOnly, FileChannel channel) {
        this.handle = handle;
        this.name = handle.name();
        this.fd = handle.fd();
        this.path = path;
        this.readOnly = readOnly;
        this.channel = channel;
    }

    /** A buffered channel on the same open file: /proc/self/fd names exactly the inode we opened. */
    static FileChannel channelOn(String name, int fd, Path path, boolean writable) throws IOException {
        Set<StandardOpenOption> options = writable
                ? EnumSet.of(StandardOpenOption.READ, StandardOpenOption.WRITE)
                : EnumSet.of(StandardOpenOption.READ);
        Path proc = Path.of("/proc/self/fd/" + fd);
        try {
            return FileChannel.open(Files.exists(proc) ? proc : path, options);
        } catch (IOException e) {
            throw new ImageException(name, -1, "open of the file channel failed: " + message(e), e);
        }
    }

    /** Reads {@code dst} full from {@code offset}; what lies past the end of the file reads as zeroes. */
    void read(ByteBuffer dst, long offset) throws IOException {
        long pos = offset;
        while (dst.hasRemaining()) {
            long at = pos;
            int n = withChannel("read", at, dst.remaining(), ch -> ch.read(dst, at));
            if (n < 0) {
                zeroFill(dst); // past the end of the file
                return;
            }
            pos += n;
        }
    }

    private static void zeroFill(ByteBuffer dst) {
        MemorySegment.ofBuffer(dst).fill((byte) 0);
        dst.position(dst.limit());
    }

    /** Writes all of {@code src} at {@code offset}. */
    void write(ByteBuffer src, long offset) throws IOException {
        long pos = offset;
        while (src.hasRemaining()) {
            long at = pos;
            pos += withChannel("write", at, src.remaining(), ch -> ch.write(src, at));
        }
    }

    /** One call on the channel, which {@link #withChannel} retries or reports. */
    @FunctionalInterface
    interface ChannelCall<T> {
        T apply(FileChannel channel) throws IOException;
    }

    /**
     * Runs one channel call; {@code offset} and {@code length} only describe it in messages. If another
     * thread's interrupt closed the channel, reopens it and retries (positional calls are idempotent); if
     * this thread was interrupted, reopens it for the others and throws {@link InterruptedIOException}.
     */
    <T> T withChannel(String op, long offset, long length, ChannelCall<T> call) throws IOException {
        while (true) {
            FileChannel ch = channel;
            try {
                return call.apply(ch);
            } catch (ClosedByInterruptException e) {
                handle.checkOpen();
                InterruptedIOException interrupted = new InterruptedIOException(
                        name + ": " + describe(op, offset, length) + " interrupted");
                interrupted.initCause(e);
                try {
                    reopen(ch);
                } catch (IOException notReopened) {
                    interrupted.addSuppressed(notReopened);
                }
                throw interrupted;
            } catch (ClosedChannelException e) { // also AsynchronousCloseException
                handle.checkOpen();
                reopen(ch);
            } catch (IOException e) {
                throw new ImageException(name, -1, describe(op, offset, length) + " failed: " + message(e), e);
            }
        }
    }

    private void reopen(FileChannel old) throws IOException {
        if (fd < 0) {
            // the lock lived on the closed channel: reopening by path could open another file, unlocked
            throw new ImageException(name, "the file channel was closed by a thread interrupt; reopen the storage");
        }
        channelLock.lock();
        try {
            handle.checkOpen();
            if (channel == old) {
                handle.enter();
                try {
                    channel = channelOn(name, fd, path, !readOnly);
                } finally {
                    handle.exit();
                }
            }
        } finally {
            channelLock.unlock();
        }
    }

    /** Closes the channel, waiting for a reopen in progress. */
    void close() throws ImageException {
        channelLock.lock();
        try {
            channel.close();
        } catch (IOException e) {
            throw new ImageException(name, -1, "close failed: " + message(e), e);
        } finally {
            channelLock.unlock();
        }
    }
}
