package imago.bochs.internal;

import imago.testkit.GuestContent;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;

/**
 * Builds bochs growing images from the published layout, as bximage writes them: a header, the catalog, then one
 * block (bitmap, then the extent's sectors) per written extent, in the order the extents were first written.
 */
final class BochsImages {
    private BochsImages() {
    }

    /**
     * A header of {@code version} for a disk of {@code disk} bytes.
     *
     * @param catalog the catalog's entry count
     * @param bitmap the bitmap size in bytes
     */
    static ByteBuffer header(int version, int catalog, int bitmap, int extent, long disk) {
        ByteBuffer b = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, "Bochs Virtual HD Image".getBytes(StandardCharsets.US_ASCII));
        b.put(32, "Redolog".getBytes(StandardCharsets.US_ASCII));
        b.put(48, "Growing".getBytes(StandardCharsets.US_ASCII));
        b.putInt(64, version).putInt(68, 512).putInt(72, catalog).putInt(76, bitmap).putInt(80, extent);
        b.putLong(version == BochsHeader.VERSION_1 ? 84 : 88, disk);
        return b;
    }

    /**
     * A whole image whose guest content is {@code content} (its length is the disk size): every 512-byte sector that
     * is not all zeroes is written, and so is every sector {@code random} picks among the zero ones (a written
     * zero sector); extents are laid out in a shuffled order.
     */
    static byte[] image(int version, int extent, byte[] content, Random random) {
        int sectorsPerExtent = extent / 512;
        int extents = Math.ceilDiv(Math.ceilDiv(content.length, 512), sectorsPerExtent);
        int bitmap = Math.max(1, sectorsPerExtent / 8);
        int bitmapSpan = Math.ceilDiv(bitmap, 512) * 512;
        int blockBytes = bitmapSpan + extent;
        int[] catalog = new int[extents];
        Arrays.fill(catalog, -1);
        Integer[] order = new Integer[extents];
        for (int i = 0; i < extents; i++) {
            order[i] = i;
        }
        java.util.Collections.shuffle(Arrays.asList(order), random);
        byte[][] blocks = new byte[extents][];
        int used = 0;
        for (int e : order) {
            byte[] block = new byte[blockBytes];
            boolean any = false;
            for (int s = 0; s < sectorsPerExtent; s++) {
                long at = ((long) e * sectorsPerExtent + s) * 512;
                if (at >= content.length) {
                    break;
                }
                int n = (int) Math.min(512, content.length - at);
                boolean zero = true;
                for (int k = 0; k < n && zero; k++) {
                    zero = content[(int) at + k] == 0;
                }
                if (!zero || random.nextInt(8) == 0) {
                    block[s / 8] |= (byte) (1 << (s % 8));
                    System.arraycopy(content, (int) at, block, bitmapSpan + s * 512, n);
                    any = true;
                }
            }
            if (any) {
                catalog[e] = used;
                blocks[used++] = block;
            }
        }
        ByteBuffer out = ByteBuffer.allocate(512 + 4 * extents + used * blockBytes).order(ByteOrder.LITTLE_ENDIAN);
        out.put(header(version, extents, bitmap, extent, content.length));
        for (int c : catalog) {
            out.putInt(c);
        }
        for (int i = 0; i < used; i++) {
            out.put(blocks[i]);
        }
        return out.array();
    }

    /** Guest content: runs of random bytes, zeroes and a repeated byte, {@code length} bytes in all. */
    static byte[] content(int length, Random random) {
        return GuestContent.runs(length, random, r -> 512 * (1 + r.nextInt(24)) + r.nextInt(3) * 100);
    }
}
