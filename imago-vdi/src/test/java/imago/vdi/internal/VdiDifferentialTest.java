package imago.vdi.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.QemuWorkloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * vdi both ways against qemu-img 7.2: images qemu-img and qemu-io write read in imago as {@code qemu-img convert}
 * reads them and map as {@code qemu-img map} maps them; images imago creates are qemu-img's byte for byte but for
 * the UUIDs; images imago writes are identical for {@code qemu-img compare} to what was written, and clean for
 * {@code qemu-img check}.
 */
class VdiDifferentialTest {

    @ParameterizedTest(name = "static={0}, {1} bytes")
    @CsvSource({"off, 5242880", "on, 5242880", "off, 3000000", "on, 3000000", "off, 1000", "on, 1", "off, 0",
            "on, 0"})
    void readsAndMapsWhatQemuWrites(String fixed, long size, @TempDir Path dir) throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vdi", "-o", "static=" + fixed, "img.vdi", size);
        long virtual = QemuReads.qemuSize(dir, dir.resolve("img.vdi"), "vdi");
        if (virtual >= 4L << 20) {
            QemuReads.qemuIo(dir, "vdi", "img.vdi", List.of("write -P 0xa1 0 64k", "write -P 0xb2 3M 1536",
                    "write -z 1M 512k", "write -P 0xc3 " + (virtual - 4096) + " 4096"));
        } else if (virtual > 0) {
            QemuReads.qemuIo(dir, "vdi", "img.vdi", List.of("write -P 0x5e 0 " + Math.min(virtual, 512)));
        }
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.vdi"), "vdi");
    }

    /** Seeded random qemu-io workloads. */
    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3})
    void readsRandomQemuWorkloads(long seed, @TempDir Path dir) throws IOException {
        Qemu.require();
        Random r = new Random(seed);
        long size = (4L << 20) + 512L * r.nextInt(8192);
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vdi", "img.vdi", size);
        QemuReads.qemuIo(dir, "vdi", "img.vdi", QemuWorkloads.randomWrites(r, size, 20, 1024));
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.vdi"), "vdi");
    }

    /** imago's new images are qemu-img's, byte for byte, with the two random UUIDs masked. */
    @ParameterizedTest(name = "static={0}, {1} bytes")
    @CsvSource({"off, 5242880", "on, 5242880", "off, 3000000", "on, 1000", "off, 0", "off, 200000000"})
    void createsWhatQemuImgCreates(String fixed, long size, @TempDir Path dir) throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vdi", "-o", "static=" + fixed, "qemu.vdi", size);
        Imago.create(dir.resolve("imago.vdi"), "vdi", CreateOptions.builder().size(size).option("static", fixed)
                .build());
        byte[] expected = masked(Files.readAllBytes(dir.resolve("qemu.vdi")));
        byte[] actual = masked(Files.readAllBytes(dir.resolve("imago.vdi")));
        assertEquals(expected.length, actual.length, "file length");
        assertArrayEquals(expected, actual);
        assertEquals(Qemu.ok(dir, "qemu-img", "map", "--output=json", "qemu.vdi"),
                Qemu.ok(dir, "qemu-img", "map", "--output=json", "imago.vdi"));
    }

    private static byte[] masked(byte[] file) {
        Arrays.fill(file, VdiHeader.UUID_IMAGE_AT, VdiHeader.UUID_LINK_AT, (byte) 0);
        return file;
    }

    /**
     * What imago writes (random writes and zero writes over both kinds of image) qemu-img reads back: {@code compare}
     * finds the same bytes as a raw copy of the guest's view, {@code check} is clean, and writing the same steps
     * through qemu-io gives a file of the same layout (the same map).
     */
    @ParameterizedTest(name = "static={0}, seed {1}")
    @CsvSource({"off, 1", "off, 2", "on, 3", "off, 4"})
    void qemuReadsWhatImagoWrites(String fixed, long seed, @TempDir Path dir) throws IOException {
        Qemu.require();
        // the same writes through qemu-io allocate the same blocks in the same order
        Path image = QemuWorkloads.assertRandomFillsReadAsWritten(dir, "vdi", "vdi", "static", fixed, seed);
        assertTrue(Files.size(image) <= Files.size(dir.resolve("qemu.vdi")), "file no longer than qemu-io's");
    }
}
