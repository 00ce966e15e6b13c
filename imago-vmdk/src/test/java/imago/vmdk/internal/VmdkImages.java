package imago.vmdk.internal;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.Deflater;

/**
 * Builds small hosted sparse images byte by byte, for hostile-input tests: a header (every field settable), an
 * embedded descriptor at sector 1, the grain directory at sector 21, one grain table at sector 22, and grains from
 * sector 128. Nothing is checked: the point is to make what a checker must refuse.
 */
final class VmdkImages {
    int version = 1;
    int flags = VmdkSparseHeader.FLAG_NL_DETECT;
    long capacity = 2048;
    long grainSize = 128;
    long descriptorOffset = 1;
    long descriptorSize = 20;
    int gtesPerGt = 512;
    long rgdOffset = 0;
    long gdOffset = 21;
    long overhead = 128;
    int newlineCheck = VmdkSparseHeader.NEWLINE_CHECK;
    int compressAlgorithm = 0;
    String descriptor = "# Disk DescriptorFile\nversion=1\nCID=abcd1234\nparentCID=ffffffff\n"
            + "createType=\"monolithicSparse\"\nRW 2048 SPARSE \"x.vmdk\"\n";
    /** Grain directory entry 0 (the table's sector). */
    int gdEntry0 = 22;
    /** Grain table entries, from grain 0. */
    int[] gtes = new int[0];
    /** The file's length; -1 for as long as what was written. */
    long length = -1;
    private final ByteBuffer file = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
    private int end;

    /** A sparse image that reads as zeroes. */
    static VmdkImages sparse() {
        return new VmdkImages();
    }

    /** Places {@code bytes} at sector {@code sector}. */
    VmdkImages at(long sector, byte[] bytes) {
        file.put((int) (sector * 512), bytes);
        end = Math.max(end, (int) (sector * 512) + bytes.length);
        return this;
    }

    /** A compressed grain at {@code sector}: a marker with {@code size} (or the stream's length if negative). */
    VmdkImages compressedGrain(long sector, long lba, byte[] zlib, long size) {
        ByteBuffer b = ByteBuffer.allocate(12 + zlib.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(lba).putInt((int) (size < 0 ? zlib.length : size)).put(zlib);
        return at(sector, b.array());
    }

    /** A zlib stream of {@code data}. */
    static byte[] zlib(byte[] data) {
        Deflater d = new Deflater();
        d.setInput(data);
        d.finish();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[4096];
        while (!d.finished()) {
            out.write(buf, 0, d.deflate(buf));
        }
        d.end();
        return out.toByteArray();
    }

    byte[] build() {
        ByteBuffer h = ByteBuffer.allocate(512);
        new VmdkSparseHeader(version, flags, capacity, grainSize, descriptorOffset, descriptorSize, gtesPerGt,
                rgdOffset, gdOffset, overhead, 0, newlineCheck, compressAlgorithm).writeTo(h);
        at(0, h.array());
        at(1, descriptor.getBytes(StandardCharsets.UTF_8));
        at(21, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(gdEntry0).array());
        ByteBuffer gt = ByteBuffer.allocate(gtes.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int e : gtes) {
            gt.putInt(e);
        }
        at(22, gt.array());
        end = Math.max(end, (int) Math.min(overhead * 512, file.capacity()));
        int n = length >= 0 ? (int) length : end;
        byte[] out = new byte[n];
        file.get(0, out, 0, Math.min(n, file.capacity()));
        return out;
    }
}
