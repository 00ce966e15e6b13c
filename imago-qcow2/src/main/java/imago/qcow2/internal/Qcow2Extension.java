package imago.qcow2.internal;

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
            out.add(new FeatureName(data[i] & 0xFF, data[i + 1] & 0xFF, Qcow2Header.cString(name)));
        }
        return out;
    }
}
