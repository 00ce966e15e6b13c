package imago.storage.file.internal;

import static imago.storage.file.internal.Failures.message;

import imago.api.ImageException;
import java.io.IOException;

/**
 * What closing a file storage gives back, in order: the data channel, the portable lock (without native access), and
 * the descriptor, whose close releases the OFD (or {@code flock}) image locks. Each is released even if an earlier
 * one failed; the first failure is the one reported.
 */
final class FileRelease {
    private FileRelease() {
    }

    /** Releases what a storage named {@code name} holds; {@code portableLock} may be null. */
    static void release(String name, ChannelIo channels, PortableLock portableLock, FileHandle handle,
            boolean nativeAccess) throws IOException {
        IOException failure = null;
        try {
            channels.close();
        } catch (ImageException e) {
            failure = e;
        }
        if (portableLock != null) {
            try {
                portableLock.release();
            } catch (IOException e) {
                if (failure == null) {
                    failure = new ImageException(name, -1, "unlock failed: " + message(e), e);
                }
            }
        }
        if (nativeAccess) {
            try {
                handle.closeDescriptor();
            } catch (ImageException e) {
                if (failure == null) {
                    failure = e;
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
