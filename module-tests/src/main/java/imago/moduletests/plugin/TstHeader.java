package imago.moduletests.plugin;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The 512-byte imagotst header.
 *
 * @param size the virtual size in bytes
 * @param version the format version (1)
 */
record TstHeader(long size, int version) {
    /** The magic bytes at offset 0. */
    static final byte[] MAGIC = "IMAGOTST".getBytes(StandardCharsets.US_ASCII);
    /** Header length: guest byte 0 is at this host offset. */
    static final int LENGTH = 512;
    /** The only version there is. */
    static final int VERSION = 1;
    /** The bytes of the header that hold fields: a shorter file is truncated. */
    static final int FIELDS_LENGTH = 20;
    /** The largest virtual size whose data still fits below {@link Long#MAX_VALUE}. */
    static final long MAX_SIZE = Long.MAX_VALUE - LENGTH;

    /** The magic as one big-endian number. */
    private static final long MAGIC_NUMBER = ByteBuffer.wrap(MAGIC).getLong();

    /**
     * Whether {@code head} (read-only, any length and byte order) starts with the magic. One 64-bit
     * comparison, which a fuzzer's comparison tracing can solve, unlike a byte-array comparison.
     */
    static boolean hasMagic(ByteBuffer head) {
        return head.remaining() >= MAGIC.length
                && head.duplicate().order(ByteOrder.BIG_ENDIAN).getLong(head.position()) == MAGIC_NUMBER;
    }

    /**
     * Parses and validates a header.
     *
     * @param resource the storage name, for messages
     * @param buf the first {@link #LENGTH} bytes from its position
     * @throws CorruptImageException if the magic is wrong or the size does not fit
     * @throws UnsupportedFeatureException if the version is not 1
     */
    static TstHeader parse(String resource, ByteBuffer buf) throws CorruptImageException,
            UnsupportedFeatureException {
        ByteBuffer be = buf.slice().order(ByteOrder.BIG_ENDIAN);
        if (!hasMagic(be)) {
            throw new CorruptImageException(resource, 0, "not an imagotst image: bad magic");
        }
        long size = be.getLong(8);
        int version = be.getInt(16);
        if (version != VERSION) {
            String feature = "imagotst version " + Integer.toUnsignedString(version);
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, feature, feature + " is not supported");
        }
        if (size < 0 || size > MAX_SIZE) {
            throw new CorruptImageException(resource, 8, "virtual size " + Long.toUnsignedString(size)
                    + " is larger than the format allows (" + MAX_SIZE + ")");
        }
        return new TstHeader(size, version);
    }

    /** Writes the whole header (with its reserved zeroes) at {@code buf}'s position. */
    void writeTo(ByteBuffer buf) {
        ByteBuffer be = buf.slice(buf.position(), LENGTH).order(ByteOrder.BIG_ENDIAN);
        be.put(MAGIC).putLong(size).putInt(version);
        while (be.hasRemaining()) {
            be.put((byte) 0);
        }
        buf.position(buf.position() + LENGTH);
    }

    /** The header as a fresh buffer ready to write. */
    ByteBuffer toBuffer() {
        ByteBuffer b = ByteBuffer.allocate(LENGTH);
        writeTo(b);
        return b.flip();
    }
}
