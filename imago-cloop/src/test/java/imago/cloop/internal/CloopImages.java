package imago.cloop.internal;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.zip.Deflater;

/** Builds cloop images from the published layout, as create_compressed_fs writes them: script, sizes, offsets. */
final class CloopImages {
    static final String V2 = "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";
    static final String V3 = "#!/bin/sh\n#V3.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

    private CloopImages() {
    }

    /** An image of {@code content} (a whole number of blocks) with {@code script} as its first 128 bytes. */
    static byte[] image(String script, int blockSize, byte[] content) {
        int blocks = content.length / blockSize;
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        long[] offsets = new long[blocks + 1];
        long base = CloopTable.TABLE + 8L * (blocks + 1);
        offsets[0] = base;
        byte[] buffer = new byte[2 * blockSize + 64];
        for (int i = 0; i < blocks; i++) {
            Deflater deflater = new Deflater(i % 10);
            deflater.setInput(content, i * blockSize, blockSize);
            deflater.finish();
            int n = deflater.deflate(buffer);
            deflater.end();
            data.write(buffer, 0, n);
            offsets[i + 1] = base + data.size();
        }
        ByteBuffer out = ByteBuffer.allocate((int) base + data.size());
        out.put(script.getBytes(StandardCharsets.US_ASCII));
        out.putInt(CloopTable.HEADER, blockSize).putInt(CloopTable.HEADER + 4, blocks);
        out.position(CloopTable.TABLE);
        for (long o : offsets) {
            out.putLong(o);
        }
        out.put(data.toByteArray());
        return out.array();
    }
}
