package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import imago.api.Image;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Fuzz targets for vmdk: the descriptor parser (any bytes as a descriptor file, whose extent files may name the two
 * files this target provides, {@code a.raw} and {@code s.vmdk}) and the sparse extent header (any bytes as a
 * monolithic sparse or stream image: header, footer, grain directory and tables, compressed grains). Both open the
 * bytes with the vmdk driver named, writable, so that no other driver answers; the image is walked as
 * {@link FuzzContract} says, and a write is tried.
 *
 * <p>A normal run replays the committed corpus in
 * {@code src/test/resources/imago/moduletests/fuzz/VmdkFuzzTestInputs/<method>/}: descriptors with flat, zero, sparse,
 * VMFS and NOACCESS extents and a parent; sparse images (plain, zeroed-grain, compressed with markers, and VMware's
 * stream with its directory in the footer) of 4 KiB grains, each clean for {@code qemu-img check}. To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=VmdkFuzzTest#descriptor -Djazzer.max_duration=10m
 * </pre>
 */
class VmdkFuzzTest {
    private static final String NAME = "fuzz.vmdk";
    private static final String RAW = "a.raw";
    private static final String SPARSE = "s.vmdk";

    /** Any bytes as a descriptor file; its extents may be the raw and sparse files this target provides. */
    @FuzzTest(maxDuration = "2m")
    void descriptor(byte[] data) {
        MemoryStorage.of(RAW, new byte[8192]).close();
        MemoryStorage.of(SPARSE, SparseSeed.BYTES).close();
        try {
            openWalkWrite(data);
        } finally {
            MemoryStorage.delete(RAW);
            MemoryStorage.delete(SPARSE);
        }
    }

    /** Any bytes as a sparse extent (header, footer, tables, grains) holding its own descriptor. */
    @FuzzTest(maxDuration = "2m")
    void sparseHeader(byte[] data) {
        openWalkWrite(data);
    }

    private static void openWalkWrite(byte[] data) {
        MemoryStorage.of(NAME, data).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(NAME)).format("vmdk").writable(true)
                .open()) {
            FuzzContract.walk(image);
            if (image.size() > 0) {
                image.write(ByteBuffer.allocate((int) Math.min(image.size(), 4096)), 0);
                image.flush();
                FuzzContract.walk(image);
            }
        } catch (IOException | RuntimeException e) {
            FuzzContract.expected(e);
        } finally {
            MemoryStorage.delete(NAME);
        }
    }

    /** A small valid sparse extent for descriptors to name: 64 sectors of 4 KiB grains, nothing allocated. */
    private static final class SparseSeed {
        static final byte[] BYTES = build();

        private static byte[] build() {
            ByteBuffer b = ByteBuffer.allocate(16 * 512).order(ByteOrder.LITTLE_ENDIAN);
            b.put(0, "KDMV".getBytes(StandardCharsets.US_ASCII));
            b.putInt(4, 1).putInt(8, 3).putLong(12, 64).putLong(20, 8).putLong(28, 0).putLong(36, 0).putInt(44, 512)
                    .putLong(48, 3).putLong(56, 8).putLong(64, 16);
            b.put(73, (byte) '\n').put(74, (byte) ' ').put(75, (byte) '\r').put(76, (byte) '\n');
            b.putInt(3 * 512, 4).putInt(8 * 512, 9);
            return b.array();
        }
    }
}
