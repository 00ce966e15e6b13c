package imago.qcow2.internal;

import java.util.Arrays;

/**
 * The references {@link Qcow2Check} counted, one entry per host cluster in the image's refcount width (QEMU's
 * in-memory refcount table): bytes for widths up to 8 bits, then 16, 32 and 64-bit entries.
 */
final class Qcow2RefArray {
    private final int order;
    private long size;
    private byte[] b;
    private char[] c;
    private int[] i32;
    private long[] l;

    Qcow2RefArray(int order, int size) {
        this.order = order;
        this.size = size;
        allocate(size);
    }

    private void allocate(int capacity) {
        switch (order) {
            case 0, 1, 2, 3 -> b = b == null ? new byte[capacity] : Arrays.copyOf(b, capacity);
            case 4 -> c = c == null ? new char[capacity] : Arrays.copyOf(c, capacity);
            case 5 -> i32 = i32 == null ? new int[capacity] : Arrays.copyOf(i32, capacity);
            default -> l = l == null ? new long[capacity] : Arrays.copyOf(l, capacity);
        }
    }

    private int capacity() {
        return switch (order) {
            case 0, 1, 2, 3 -> b.length;
            case 4 -> c.length;
            case 5 -> i32.length;
            default -> l.length;
        };
    }

    long size() {
        return size;
    }

    /** Grows to at least {@code n} entries (new ones 0). */
    void ensure(long n) {
        if (n <= size) {
            return;
        }
        if (n > capacity()) {
            allocate((int) Math.min(Integer.MAX_VALUE - 8, Math.max(n, capacity() + (capacity() >> 1) + 16)));
        }
        size = n;
    }

    long get(long k) {
        int x = (int) k;
        return switch (order) {
            case 0, 1, 2, 3 -> b[x] & 0xFF;
            case 4 -> c[x];
            case 5 -> Integer.toUnsignedLong(i32[x]);
            default -> l[x];
        };
    }

    void set(long k, long v) {
        int x = (int) k;
        switch (order) {
            case 0, 1, 2, 3 -> b[x] = (byte) v;
            case 4 -> c[x] = (char) v;
            case 5 -> i32[x] = (int) v;
            default -> l[x] = v;
        }
    }
}
