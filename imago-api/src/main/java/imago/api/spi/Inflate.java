package imago.api.spi;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Inflating a zlib-compressed block that must fill exactly its uncompressed size, for formats whose blocks are
 * compressed one by one (cloop blocks, dmg chunks): one clear exception for a block that is not zlib, or that
 * inflates to more or fewer bytes, never a buffer overrun.
 */
public final class Inflate {
    private Inflate() {
    }

    /**
     * Inflates {@code compressed} (zlib, with its header) into all of {@code out}.
     *
     * @param resource the image, for the message
     * @param offset where the compressed bytes start in the image's file, for the message
     * @param what the block as the format names it ("block 3", "zlib chunk 7"), for the message
     * @throws CorruptImageException if the bytes are not a zlib stream or do not inflate to exactly
     *         {@code out.length} bytes
     */
    public static void zlibExactly(ByteBuffer compressed, byte[] out, String resource, long offset, String what)
            throws CorruptImageException {
        Inflater inflater = new Inflater();
        try {
            inflater.setInput(compressed);
            int n = inflater.inflate(out);
            if (!inflater.finished() || n != out.length) {
                throw new CorruptImageException(resource, offset, what + " does not inflate to exactly " + out.length
                        + " bytes");
            }
        } catch (DataFormatException e) {
            throw new CorruptImageException(resource, offset, what + " is not a zlib stream: " + e.getMessage(), e);
        } finally {
            inflater.end();
        }
    }
}
