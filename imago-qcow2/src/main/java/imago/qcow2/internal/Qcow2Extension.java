package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Checks.u32;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One header extension, kept verbatim so that a writer can preserve unknown ones.
 *
 * @param type the extension type
 * @param offset where its 8-byte type/length header starts in cluster 0
 * @param data its payload, without padding
 */
record Qcow2Extension(int type, long offset, byte[] data) {
    /** Bytes of one feature-name table entry. */
    static final int FEATURE_NAME_SIZE = 48;

    /** The feature-name table QEMU 7.2 writes into v3 images: type, bit, name. */
    private static final Object[][] FEATURES = {
        {0, 0, "dirty bit"}, {0, 1, "corrupt bit"}, {0, 2, "external data file"}, {0, 3, "compression type"},
        {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"}, {2, 0, "bitmaps"}, {2, 1, "raw external data"},
    };

    /** The feature-name table extension's payload, as QEMU 7.2 writes it into v3 images. */
    static byte[] featureTable() {
        byte[] table = new byte[FEATURES.length * Qcow2Extension.FEATURE_NAME_SIZE];
        for (int i = 0; i < FEATURES.length; i++) {
            int at = i * Qcow2Extension.FEATURE_NAME_SIZE;
            table[at] = (byte) (int) (Integer) FEATURES[i][0];
            table[at + 1] = (byte) (int) (Integer) FEATURES[i][1];
            byte[] name = ((String) FEATURES[i][2]).getBytes(StandardCharsets.US_ASCII);
            System.arraycopy(name, 0, table, at + 2, name.length);
        }
        return table;
    }

    /**
     * A feature-name table entry.
     *
     * @param type 0 incompatible, 1 compatible, 2 autoclear
     * @param bit the bit number
     * @param name the feature's name
     */
    record FeatureName(int type, int bit, String name) {
    }

    /** The entries of a feature-name table extension (whole 48-byte entries only). */
    List<FeatureName> featureNames() {
        List<FeatureName> out = new ArrayList<>();
        for (int i = 0; i + FEATURE_NAME_SIZE <= data.length; i += FEATURE_NAME_SIZE) {
            byte[] name = new byte[FEATURE_NAME_SIZE - 2];
            System.arraycopy(data, i + 2, name, 0, name.length);
            out.add(new FeatureName(data[i] & 0xFF, data[i + 1] & 0xFF, cString(name)));
        }
        return out;
    }

    /** The header extensions from {@code start} up to the end marker, all before {@code end}. */
    static List<Qcow2Extension> parseAll(ByteBuffer b, String resource, int start, int end)
            throws CorruptImageException {
        List<Qcow2Extension> out = new ArrayList<>();
        long offset = start;
        while (offset < end) {
            if (end - offset < 8) {
                throw new CorruptImageException(resource, offset, "header extension header is cut short "
                        + "by the end of cluster 0 or the backing file name");
            }
            int type = b.getInt((int) offset);
            long len = u32(b.getInt((int) offset + 4));
            if (type == Qcow2Header.EXT_END) {
                break;
            }
            if (len > end - offset - 8) {
                throw new CorruptImageException(resource, offset, "Header extension too large (type 0x"
                        + Integer.toHexString(type) + ", " + len + " bytes)");
            }
            byte[] data = new byte[(int) len];
            b.get((int) offset + 8, data);
            out.add(new Qcow2Extension(type, offset, data));
            offset += 8 + ((len + 7) & ~7L);
        }
        return out;
    }

    /** Bytes up to the first NUL, as UTF-8. */
    static String cString(byte[] bytes) {
        int n = 0;
        while (n < bytes.length && bytes[n] != 0) {
            n++;
        }
        return new String(bytes, 0, n, StandardCharsets.UTF_8);
    }
}
