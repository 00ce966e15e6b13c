package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Preallocation;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The disk the crash tests trust: what it keeps, drops and tears, and when it fails. */
class FaultStorageTest {

    private static byte[] filled(int length, int value) {
        byte[] b = new byte[length];
        Arrays.fill(b, (byte) value);
        return b;
    }

    @Test
    void failsFromTheChosenWriteOnUntilHealed() throws IOException {
        FaultStorage s = new FaultStorage("fail");
        s.failAfter(2);
        s.write(ByteBuffer.wrap(filled(10, 1)), 0);
        s.write(ByteBuffer.wrap(filled(10, 2)), 10);
        assertThrows(IOException.class, () -> s.write(ByteBuffer.wrap(filled(10, 3)), 20));
        assertTrue(s.failing());
        assertThrows(IOException.class, () -> s.write(ByteBuffer.wrap(filled(10, 4)), 0));
        s.heal();
        s.write(ByteBuffer.wrap(filled(10, 5)), 20);
        byte[] expected = new byte[30];
        Arrays.fill(expected, 0, 10, (byte) 1);
        Arrays.fill(expected, 10, 20, (byte) 2);
        Arrays.fill(expected, 20, 30, (byte) 5);
        assertArrayEquals(expected, s.content());
    }

    @Test
    void aCrashKeepsSyncedBytesAndOnlyWholeSectorsOfUnsyncedWrites() throws IOException {
        Set<String> outcomes = new HashSet<>();
        int torn = FaultStorage.tornFiles();
        FaultStorage s = new FaultStorage("crash");
        s.write(ByteBuffer.wrap(filled(2048, 1)), 0);
        s.sync();
        // point 0: a write over four sectors; point 1, the crash: just before the sync that would keep it
        s.crashAt(1, 64);
        s.write(ByteBuffer.wrap(filled(2048, 2)), 0);
        s.sync();
        assertArrayEquals(filled(2048, 2), s.content(), "the disk itself keeps working");
        List<byte[]> files = s.crashFiles();
        assertEquals(64, files.size());
        for (byte[] file : files) {
            assertEquals(2048, file.length);
            for (int sector = 0; sector < 4; sector++) {
                byte[] part = Arrays.copyOfRange(file, sector * 512, sector * 512 + 512);
                assertTrue(Arrays.equals(part, filled(512, 1)) || Arrays.equals(part, filled(512, 2)),
                        "a sector is written whole or not at all");
            }
            outcomes.add(Arrays.toString(new byte[] {file[0], file[512], file[1024], file[1536]}));
        }
        assertTrue(outcomes.size() > 2, "drops, tears and keeps: " + outcomes);
        assertTrue(FaultStorage.tornFiles() > torn, "no torn write");
    }

    @Test
    void aShrinkDropsTheTailForGoodOnceSynced() throws IOException {
        FaultStorage s = new FaultStorage("shrink");
        s.write(ByteBuffer.wrap(filled(4096, 7)), 0);
        s.resize(1000, Preallocation.OFF);
        s.resize(4096, Preallocation.OFF);
        assertArrayEquals(Arrays.copyOf(filled(1000, 7), 4096), s.content(), "grown again, the tail reads zeroes");
        s.resize(1000, Preallocation.OFF);
        s.sync();
        s.crashAt(0, 1);
        s.sync();
        assertEquals(1000, s.crashed().orElseThrow().length);
    }

    @Test
    void theFilesOfOneImageLosePowerTogether() throws IOException {
        FaultStorage main = new FaultStorage("main");
        FaultStorage extent = new FaultStorage("extent");
        FaultStorage.sharePower(List.of(main, extent));
        main.crashAt(2, 4);
        extent.write(ByteBuffer.wrap(filled(512, 1)), 0);   // point 0
        extent.sync();                                      // point 1: the extent's write is durable
        main.write(ByteBuffer.wrap(filled(512, 2)), 0);     // point 2, the crash: this write may be lost
        main.sync();
        extent.write(ByteBuffer.wrap(filled(512, 3)), 0);   // after the crash: in no crash file
        assertEquals(5, main.points(), "points are counted over both disks");
        assertEquals(4, main.crashFiles().size());
        assertEquals(4, extent.crashFiles().size(), "the extent lost power with the main file");
        for (byte[] file : extent.crashFiles()) {
            assertArrayEquals(filled(512, 1), file, "the extent's synced write survives, its later one is not in");
        }
        for (byte[] file : main.crashFiles()) {
            assertEquals(0, file.length, "power went out before the main file's write");
        }
    }
}
