package imago.storage.file.internal;

import imago.api.ImageLockedException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Advisory locking without native access. {@link FileLock}s are held per process and the JDK refuses
 * even two shared locks on one file within a JVM, so this keeps one OS lock per file and JVM, on a
 * channel of its own, and counts the storages of this JVM that share it: readers share a shared lock,
 * a writer holds an exclusive one alone. The lock goes when the last of them closes.
 */
final class PortableLock {
    private static final ReentrantLock REGISTRY_LOCK = new ReentrantLock();
    private static final Map<Object, PortableLock> HELD = new HashMap<>();

    private final Object key;
    private final FileChannel channel;
    private final boolean exclusive;
    private int users = 1;

    private PortableLock(Object key, FileChannel channel, boolean exclusive) {
        this.key = key;
        this.channel = channel;
        this.exclusive = exclusive;
    }

    /**
     * Takes or shares the lock on {@code path}.
     *
     * @throws ImageLockedException if a conflicting lock is held in this JVM or elsewhere
     */
    static PortableLock acquire(String name, Path path, boolean writable) throws IOException {
        Object key = Files.readAttributes(path, BasicFileAttributes.class).fileKey();
        if (key == null) {
            key = path.toRealPath();
        }
        REGISTRY_LOCK.lock();
        try {
            PortableLock held = HELD.get(key);
            if (held != null) {
                if (writable || held.exclusive) {
                    throw ImageLocks.locked(name, writable);
                }
                held.users++;
                return held;
            }
            FileChannel channel = writable
                    ? FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)
                    : FileChannel.open(path, StandardOpenOption.READ);
            FileLock lock;
            try {
                lock = channel.tryLock(0, Long.MAX_VALUE, !writable);
            } catch (OverlappingFileLockException e) {
                lock = null; // taken in this JVM by someone other than imago
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
            if (lock == null) {
                channel.close();
                throw ImageLocks.locked(name, writable);
            }
            PortableLock created = new PortableLock(key, channel, writable);
            HELD.put(key, created);
            return created;
        } finally {
            REGISTRY_LOCK.unlock();
        }
    }

    /** Gives up this storage's share; the last one releases the OS lock. */
    void release() throws IOException {
        REGISTRY_LOCK.lock();
        try {
            if (--users == 0) {
                HELD.remove(key);
                channel.close(); // releases the FileLock
            }
        } finally {
            REGISTRY_LOCK.unlock();
        }
    }
}
