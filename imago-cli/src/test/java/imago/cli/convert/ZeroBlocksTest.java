package imago.cli.convert;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.PropertyRuns;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link ZeroBlocks}: the runs it reports are those a byte-by-byte look at each guest-aligned block gives, whatever the
 * chunk's guest offset, length and block size (smaller and larger than a scan step), and wherever a block's only
 * non-zero byte lies.
 */
class ZeroBlocksTest {

    /** One reported run. */
    private record Run(int from, int to, boolean zero) {
    }

    @Test
    void runsAreThoseOfEachBlockLookedAtByteByByte() {
        Random r = new Random(PropertyRuns.seed("ZeroBlocksTest runs"));
        int[] blocks = {512, 4096, 8192, 65536, 3 * 65536, 1 << 20};
        for (int round = 0; round < 150; round++) {
            int block = blocks[r.nextInt(blocks.length)];
            int length = 1 + r.nextInt(r.nextBoolean() ? 40 * 4096 : Converter.CHUNK);
            long offset = r.nextBoolean() ? (long) r.nextInt(1 << 20) * 512 : r.nextLong(1L << 40);
            ByteBuffer buffer = ByteBuffer.allocateDirect(length);
            fill(buffer, offset, block, r);
            List<Run> runs = new ArrayList<>();
            ZeroBlocks.scan(buffer, length, offset, block, (from, to, zero) -> runs.add(new Run(from, to, zero)));
            assertEquals(expected(buffer, length, offset, block), runs,
                    "length " + length + ", offset " + offset + ", block " + block);
        }
    }

    @Test
    void aChunkOfDataIsOneRun() {
        ByteBuffer buffer = ByteBuffer.allocateDirect(Converter.CHUNK);
        for (int i = 0; i < Converter.CHUNK; i++) {
            buffer.put(i, (byte) ('A' + i % 26));
        }
        List<Run> runs = new ArrayList<>();
        ZeroBlocks.scan(buffer, Converter.CHUNK, 6L << 20, 4096, (from, to, zero) -> runs.add(new Run(from, to, zero)));
        assertEquals(List.of(new Run(0, Converter.CHUNK, false)), runs);
    }

    @Test
    void aBlockIsZeroOnlyIfEveryByteIs() {
        ByteBuffer buffer = ByteBuffer.allocateDirect(4096);
        assertTrue(ZeroBlocks.isZero(buffer, 0, 4096));
        assertTrue(ZeroBlocks.isZero(buffer, 100, 103));
        buffer.put(4095, (byte) 1);
        assertFalse(ZeroBlocks.isZero(buffer, 0, 4096));
        assertTrue(ZeroBlocks.isZero(buffer, 0, 4095));
        buffer.put(3, (byte) 1);
        assertFalse(ZeroBlocks.isZero(buffer, 0, 8));
        assertFalse(ZeroBlocks.isZero(buffer, 3, 4));
        assertEquals(4096, ZeroBlocks.zeroes(4096).remaining());
        assertTrue(ZeroBlocks.zeroes(16).isReadOnly());
    }

    /**
     * Fills {@code buffer} block by guest-aligned block: runs of zero blocks and of blocks with data, the data either
     * everywhere or one byte anywhere in the block (its first 8 bytes, or past them).
     */
    private static void fill(ByteBuffer buffer, long offset, int block, Random r) {
        int length = buffer.capacity();
        boolean data = r.nextBoolean();
        int left = 0;
        for (int at = 0; at < length; ) {
            int end = Math.min(length, at + block - Math.floorMod(offset + at, block));
            if (left-- <= 0) {
                data = !data;
                left = r.nextInt(r.nextBoolean() ? 3 : 40);
            }
            if (data) {
                if (r.nextInt(4) == 0) {
                    for (int i = at; i < end; i++) {
                        buffer.put(i, (byte) (1 + r.nextInt(255)));
                    }
                } else {
                    int i = r.nextBoolean() ? at + r.nextInt(Math.min(8, end - at)) : at + r.nextInt(end - at);
                    buffer.put(i, (byte) (1 + r.nextInt(255)));
                }
            }
            at = end;
        }
    }

    /** The runs of a byte-by-byte look at each block. */
    private static List<Run> expected(ByteBuffer buffer, int length, long offset, int block) {
        List<Run> runs = new ArrayList<>();
        int runStart = 0;
        Boolean runZero = null;
        for (int at = 0; at < length; ) {
            int end = Math.min(length, at + block - Math.floorMod(offset + at, block));
            boolean zero = true;
            for (int i = at; i < end; i++) {
                zero &= buffer.get(i) == 0;
            }
            if (runZero != null && zero != runZero) {
                runs.add(new Run(runStart, at, runZero));
                runStart = at;
            }
            runZero = zero;
            at = end;
        }
        runs.add(new Run(runStart, length, runZero));
        return runs;
    }
}
