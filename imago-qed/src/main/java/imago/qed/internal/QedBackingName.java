package imago.qed.internal;

import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A QED image's backing file name rewritten ({@code rebase}), as QEMU 7.2's qed driver rewrites it: the name, not
 * terminated, right after the 64-byte header; the backing-file feature bit set when there is one and the no-probe
 * bit when it is raw. A name that does not fit in the header clusters is refused (qemu-img's "No space left in the
 * file header"), and so is any name while compatible feature bits this driver does not know are set: like QEMU, it
 * cannot tell what they keep after the header.
 *
 * <p>Crash safety: a sector is what a disk writes atomically. When the header and the new name fit in the first
 * sector they go in one write, QEMU's bytes. Otherwise the name is written first where the current header does not
 * look (after the header, or after the old name when the two would overlap), synced, and only then does the 64-byte
 * header switch to it, so a power loss leaves the old name or the new one, never a mix of both. Only when the header
 * clusters have no such room does the name go where QEMU puts it, in the one write QEMU makes.
 */
final class QedBackingName {
    private static final int SECTOR = 512;

    private QedBackingName() {
    }

    /**
     * Names {@code file} (none when {@code null}) of {@code format} (recorded only as raw) in the image's header,
     * durably; returns the header now on disk.
     *
     * @throws UnsupportedFeatureException if unknown compatible feature bits are set and a name is to be written
     * @throws ImageLimitException if the header and the name do not fit in the header clusters
     * @throws IOException if the storage fails
     */
    static QedHeader rewrite(Storage storage, QedHeader old, String file, String format) throws IOException {
        if (format != null && file == null) {
            throw new IllegalArgumentException("a backing format needs a backing file");
        }
        String resource = storage.name();
        if (file != null && old.compatFeatures() != 0) {
            throw new UnsupportedFeatureException(resource, Feature.BACKING_FILE, "qed compatible features",
                    "cannot name a backing file while unknown compatible features are set ("
                            + Long.toHexString(old.compatFeatures()) + ")");
        }
        byte[] name = file == null ? new byte[0] : file.getBytes(StandardCharsets.UTF_8);
        if (QedHeader.LENGTH + (long) name.length > old.headerBytes()) {
            throw new ImageLimitException(resource, 60, "No space left in the file header");
        }
        long features = old.features() & ~(QedHeader.BACKING_FILE | QedHeader.NO_PROBE);
        if (file != null) {
            features |= QedHeader.BACKING_FILE | ("raw".equals(format) ? QedHeader.NO_PROBE : 0);
        }
        long at = QedHeader.LENGTH + name.length <= SECTOR ? -1 : roomBesideOldName(old, name.length);
        QedHeader updated;
        if (at < 0) {
            updated = old.withBacking(features, QedHeader.LENGTH, name.length);
            ByteBuffer b = ByteBuffer.allocate(QedHeader.LENGTH + name.length);
            storage.write(b.put(updated.toBytes()).put(name).flip(), 0);
        } else {
            updated = old.withBacking(features, (int) at, name.length);
            storage.write(ByteBuffer.wrap(name), at);
            storage.sync();
            storage.write(updated.toBytes(), 0);
        }
        storage.sync();
        return updated;
    }

    /**
     * Where in the header clusters, past the header, {@code length} bytes fit without touching the name the current
     * header points at: right after the header if they can, else right after the old name; -1 if neither.
     */
    static long roomBesideOldName(QedHeader old, int length) {
        long oldStart = old.hasBacking() ? Integer.toUnsignedLong(old.backingNameOffset()) : 0;
        long oldEnd = old.hasBacking() ? oldStart + Integer.toUnsignedLong(old.backingNameSize()) : 0;
        for (long at : new long[] {QedHeader.LENGTH, Math.max(QedHeader.LENGTH, oldEnd)}) {
            boolean apart = at + length <= oldStart || at >= oldEnd;
            if (apart && at + length <= old.headerBytes()) {
                return at;
            }
        }
        return -1;
    }
}
