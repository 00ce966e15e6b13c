package imago.moduletests.fuzz;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

/**
 * Fuzz target for the vhdx driver's parsers: the file type identifier, both headers, both region tables, the log,
 * the BAT's first page and the metadata table and items come from the input, each placed where qemu-img's layout
 * puts it in a sparse 24 MiB file (see {@link #CHUNKS}); unless the input's last byte says otherwise, the headers'
 * and region tables' CRC-32C are set right, so that the fuzzer reaches the parsers behind them. The image is opened
 * read-only and writable (which replays a log), read through the generic I/O path, and written once.
 *
 * <p>The committed corpus in {@code src/test/resources/imago/moduletests/fuzz/VhdxFuzzTestInputs/openAnyVhdx/}
 * holds qemu-img's images cut into these chunks: a dynamic disk after a write (its log entry left behind), the same
 * with the log named in the header (to replay), a fixed disk with its blocks present and a dynamic disk with 1 MiB
 * blocks. To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=VhdxFuzzTest#openAnyVhdx -Djazzer.max_duration=10m
 * </pre>
 */
class VhdxFuzzTest {
    private static final String NAME = "fuzz-vhdx";
    private static final long FILE = 24L << 20;
    /** {file offset, length} of each chunk of the input, in input order. */
    static final long[][] CHUNKS = {{0, 1024}, {64 << 10, 4096}, {128 << 10, 4096}, {192 << 10, 1024},
        {256 << 10, 1024}, {1 << 20, 16384}, {2 << 20, 4096}, {3 << 20, 1024}, {(3 << 20) + (64 << 10), 1024}};

    /** The seeds reach the parsers' far end: each opens (the pending log by a writable open) and reads its data. */
    @Test
    void theSeedsAreValidImages() throws IOException {
        for (String seed : new String[] {"vhdx-qemu-dynamic-log-left", "vhdx-qemu-dynamic-log-pending",
            "vhdx-qemu-fixed-present", "vhdx-qemu-dynamic-1m-blocks"}) {
            byte[] data;
            try (InputStream in = VhdxFuzzTest.class.getResourceAsStream("VhdxFuzzTestInputs/openAnyVhdx/" + seed)) {
                data = in.readAllBytes();
            }
            try {
                place(data);
                boolean pending = seed.endsWith("pending");
                if (pending) {
                    assertThrows(ReadOnlyImageException.class, () -> Imago.opener()
                            .location(StorageLocation.memory(NAME)).format("vhdx").open());
                }
                try (Image image = Imago.opener().location(StorageLocation.memory(NAME)).format("vhdx")
                        .writable(pending).open()) {
                    assertTrue(image.size() > 0, seed);
                    ByteBuffer b = ByteBuffer.allocate(4096);
                    image.read(b, 0);
                }
            } finally {
                MemoryStorage.delete(NAME);
            }
        }
    }

    /** The input's chunks in a new sparse file {@link #NAME}, checksums set unless its last byte says not to. */
    private static void place(byte[] data) throws IOException {
        try (MemoryStorage s = MemoryStorage.create(NAME)) {
            s.resize(FILE, Preallocation.OFF);
            int pos = 0;
            for (long[] c : CHUNKS) {
                int n = (int) Math.min(c[1], data.length - pos);
                if (n <= 0) {
                    break;
                }
                s.write(ByteBuffer.wrap(data, pos, n), c[0]);
                pos += n;
            }
            if (data.length == 0 || (data[data.length - 1] & 1) == 0) {
                fixChecksum(s, 64 << 10, 4096);
                fixChecksum(s, 128 << 10, 4096);
                fixChecksum(s, 192 << 10, 64 << 10);
                fixChecksum(s, 256 << 10, 64 << 10);
            }
        }
    }

    /** Opens the input as a VHDX, reads it as a user would, and writes a sector into a writable open. */
    @FuzzTest(maxDuration = "2m")
    void openAnyVhdx(byte[] data) {
        try {
            place(data);
            try (Image image = Imago.opener().location(StorageLocation.memory(NAME)).format("vhdx").open()) {
                FuzzContract.walk(image);
            } catch (IOException | RuntimeException e) {
                FuzzContract.expected(e);
            }
            try (Image image = Imago.opener().location(StorageLocation.memory(NAME)).format("vhdx").writable(true)
                    .open()) {
                FuzzContract.writeAndWalk(image, 1536, 700);
            }
        } catch (IOException | RuntimeException e) {
            FuzzContract.expected(e);
        } finally {
            MemoryStorage.delete(NAME);
        }
    }

    /** Sets the CRC-32C at {@code at + 4} over {@code length} bytes (the field itself taken as zero). */
    private static void fixChecksum(MemoryStorage s, long at, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        s.read(b, at);
        b.putInt(4, 0);
        CRC32C crc = new CRC32C();
        crc.update(b.array());
        b.putInt(4, (int) crc.getValue());
        s.write(b.clear(), at);
    }
}
