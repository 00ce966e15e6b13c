package imago.cow.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Field helpers shared by the header records: names, unsigned values and checked arithmetic. */
final class CowFields {
    /** The data sector size the QEMU variant fixes and the UML tools always wrote. */
    static final int SECTOR = 512;
    /** The largest UML sector size accepted (UML itself only ever wrote 512). */
    static final int MAX_SECTOR = 64 * 1024;
    /** The largest UML v3 alignment accepted. */
    static final int MAX_ALIGNMENT = 1 << 30;

    private CowFields() {
    }

    /**
     * The NUL-terminated name in {@code [off, off + len)} of {@code b} (absolute indices), as UTF-8.
     *
     * @throws CorruptImageException if the field holds no NUL
     */
    static String name(ByteBuffer b, int off, int len, String resource) throws CorruptImageException {
        for (int i = 0; i < len; i++) {
            if (b.get(off + i) == 0) {
                byte[] bytes = new byte[i];
                b.get(off, bytes);
                return new String(bytes, StandardCharsets.UTF_8);
            }
        }
        throw new CorruptImageException(resource, off, "backing file name is not NUL-terminated within its "
                + len + "-byte field");
    }

    /** Stores {@code name} NUL-padded in {@code [off, off + len)}; the caller checked that it fits. */
    static void putName(ByteBuffer b, int off, int len, String name) {
        byte[] bytes = nameBytes(name, len);
        b.put(off, new byte[len]);
        b.put(off, bytes);
    }

    /**
     * The UTF-8 bytes of a name to store in a {@code len}-byte field.
     *
     * @throws IllegalArgumentException if it contains NUL or does not fit with its terminating NUL
     */
    static byte[] nameBytes(String name, int len) {
        byte[] bytes = name.getBytes(StandardCharsets.UTF_8);
        if (name.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("backing file name contains a NUL character");
        }
        if (bytes.length > len - 1) {
            throw new IllegalArgumentException("backing file name is " + bytes.length + " bytes long; this cow "
                    + "variant stores at most " + (len - 1));
        }
        return bytes;
    }

    /** A 64-bit size field, which must not have its top bit set. */
    static long size(ByteBuffer b, int off, String resource) throws CorruptImageException {
        long size = b.getLong(off);
        if (size < 0) {
            throw new CorruptImageException(resource, off, "image size " + Long.toUnsignedString(size)
                    + " is too large");
        }
        return size;
    }

    /** A sector size field of a variant that fixes it at 512. */
    static int fixedSectorSize(ByteBuffer b, int off, String resource) throws CorruptImageException {
        int ss = b.getInt(off);
        if (ss != SECTOR) {
            throw new CorruptImageException(resource, off, "sector size " + Integer.toUnsignedString(ss)
                    + " is invalid: this variant always uses 512");
        }
        return ss;
    }

    /** A UML sector size field: a power of two from 512 to 64 KiB. */
    static int umlSectorSize(ByteBuffer b, int off, String resource) throws CorruptImageException {
        int ss = b.getInt(off);
        if (ss < SECTOR || ss > MAX_SECTOR || Integer.bitCount(ss) != 1) {
            throw new CorruptImageException(resource, off, "sector size " + Integer.toUnsignedString(ss)
                    + " is invalid: it must be a power of two from 512 to " + MAX_SECTOR);
        }
        return ss;
    }

    /** A UML v3 alignment field: a power of two up to 1 GiB (0 is invalid). */
    static int alignment(ByteBuffer b, int off, String resource) throws CorruptImageException {
        int a = b.getInt(off);
        if (a <= 0 || a > MAX_ALIGNMENT || Integer.bitCount(a) != 1) {
            throw new CorruptImageException(resource, off, "alignment " + Integer.toUnsignedString(a)
                    + " is invalid: it must be a power of two up to " + MAX_ALIGNMENT);
        }
        return a;
    }

    /** {@code x} rounded up to a multiple of the power of two {@code align}; x is far below overflow. */
    static long roundUp(long x, long align) {
        return (x + align - 1) & -align;
    }

    /** {@code ceil(a / b)} for non-negative {@code a} and positive {@code b}. */
    static long ceilDiv(long a, long b) {
        return a / b + (a % b == 0 ? 0 : 1);
    }

    /**
     * Checks that the data area, {@code size} bytes from {@code dataOffset}, stays within a file's
     * reach.
     */
    static void checkDataFits(CowHeader h, String resource, int sizeFieldOffset) throws CorruptImageException {
        if (h.size() > Long.MAX_VALUE - h.dataOffset()) {
            throw new CorruptImageException(resource, sizeFieldOffset, "image size " + h.size()
                    + " puts its data past the largest file offset");
        }
    }
}
