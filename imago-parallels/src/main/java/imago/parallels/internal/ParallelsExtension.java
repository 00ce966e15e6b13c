package imago.parallels.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/**
 * The format extension cluster, checked as QEMU 7.2 checks it on a read-only open: its magic, the MD5 of the rest
 * of the cluster, and the features it lists (only the dirty bitmap, which imago reads past: it changes no guest
 * byte). A writable open ignores the extension, as QEMU does.
 */
final class ParallelsExtension {
    static final long MAGIC = 0xAB234CEF23DCEA87L;
    static final long DIRTY_BITMAP = 0x20385FAE252CB34AL;
    private static final int HEADER = 24;
    private static final int FEATURE_HEADER = 24;
    private static final int CHUNK = 1 << 20;

    private ParallelsExtension() {
    }

    /**
     * Checks the extension cluster at file offset {@code at}.
     *
     * @throws CorruptImageException if it lies past the end of the file, or its magic, checksum or feature list is
     *         wrong (QEMU's messages)
     * @throws UnsupportedFeatureException for a feature QEMU does not know, or one with flags
     */
    static void check(Storage storage, long at, long clusterSize, long fileSize) throws IOException {
        String name = storage.name();
        if (at < 0 || at > fileSize - clusterSize || clusterSize < HEADER) {
            throw new CorruptImageException(name, 56, "the format extension cluster at offset "
                    + Long.toUnsignedString(at) + " does not lie inside the file (" + fileSize + " bytes)");
        }
        ByteBuffer head = read(storage, at, HEADER);
        long magic = head.getLong(0);
        if (magic != MAGIC) {
            throw new CorruptImageException(name, at, "Wrong parallels Format Extension magic: 0x"
                    + Long.toHexString(magic) + ", expected: 0x" + Long.toHexString(MAGIC));
        }
        MessageDigest md5;
        try {
            md5 = MessageDigest.getInstance("MD5");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no MD5", e);
        }
        for (long pos = HEADER; pos < clusterSize; pos += CHUNK) {
            md5.update(read(storage, at + pos, (int) Math.min(CHUNK, clusterSize - pos)));
        }
        byte[] stored = new byte[16];
        head.get(8, stored);
        if (!Arrays.equals(stored, md5.digest())) {
            throw new CorruptImageException(name, at + 8, "Wrong checksum in Format Extension header. Format "
                    + "extension is corrupted.");
        }
        long pos = HEADER;
        while (true) {
            if (pos + FEATURE_HEADER > clusterSize) {
                throw new CorruptImageException(name, at + pos, "Parallels Format Extension: unexpected end of "
                        + "cluster");
            }
            ByteBuffer f = read(storage, at + pos, FEATURE_HEADER);
            long featureMagic = f.getLong(0);
            long flags = f.getLong(8);
            long dataSize = Integer.toUnsignedLong(f.getInt(16));
            pos += FEATURE_HEADER;
            if (featureMagic == 0) {
                return;
            }
            if (pos + dataSize > clusterSize) {
                throw new CorruptImageException(name, at + pos - FEATURE_HEADER, "Parallels Format Extension: "
                        + "feature data out of cluster");
            }
            if (flags != 0) {
                throw new UnsupportedFeatureException(name, Feature.OTHER, "parallels extension flags",
                        "Flags for extension feature are unsupported (at offset " + (at + pos - FEATURE_HEADER) + ")");
            }
            if (featureMagic != DIRTY_BITMAP) {
                throw new UnsupportedFeatureException(name, Feature.OTHER, "parallels extension feature 0x"
                        + Long.toHexString(featureMagic), "Unknown feature: 0x" + Long.toHexString(featureMagic)
                        + " (at offset " + (at + pos - FEATURE_HEADER) + ")");
            }
            pos = (pos + dataSize + 7) & -8L;
        }
    }

    private static ByteBuffer read(Storage storage, long at, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(b, at);
        if (b.hasRemaining()) {
            throw new CorruptImageException(storage.name(), at, "short read of the format extension");
        }
        return b.flip();
    }
}
