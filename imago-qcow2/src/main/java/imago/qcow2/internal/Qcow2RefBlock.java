package imago.qcow2.internal;

/**
 * One refcount block: {@code 1 << order}-bit big-endian entries; widths below 8 bits are packed from the low bit of
 * each byte.
 */
record Qcow2RefBlock(byte[] bytes, int order) {
    long get(int i) {
        if (order < 3) {
            int bits = 1 << order;
            int perByte = 8 / bits;
            int shift = (i % perByte) * bits;
            return ((bytes[i / perByte] & 0xFF) >>> shift) & ((1 << bits) - 1);
        }
        int n = 1 << (order - 3);
        long v = 0;
        for (int k = 0; k < n; k++) {
            v = (v << 8) | (bytes[i * n + k] & 0xFF);
        }
        return v;
    }

    void set(int i, long value) {
        if (order < 3) {
            int bits = 1 << order;
            int perByte = 8 / bits;
            int shift = (i % perByte) * bits;
            int mask = ((1 << bits) - 1) << shift;
            int b = i / perByte;
            bytes[b] = (byte) ((bytes[b] & ~mask) | (((int) value << shift) & mask));
            return;
        }
        int n = 1 << (order - 3);
        for (int k = n - 1; k >= 0; k--) {
            bytes[i * n + k] = (byte) value;
            value >>>= 8;
        }
    }

    /** The first byte of the bytes holding entry {@code i}. */
    int byteOffset(int i) {
        return order < 3 ? i / (8 >> order) : i << (order - 3);
    }

    /** How many bytes hold one entry (one byte for sub-byte widths). */
    int byteLength() {
        return order < 3 ? 1 : 1 << (order - 3);
    }
}
