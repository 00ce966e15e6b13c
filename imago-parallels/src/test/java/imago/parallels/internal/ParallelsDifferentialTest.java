package imago.parallels.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.QemuWorkloads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * parallels both ways against qemu-img 7.2: images qemu-img and qemu-io write (either magic) read in imago as
 * {@code qemu-img convert} reads them and map as {@code qemu-img map} maps them; images imago creates are
 * qemu-img's byte for byte; images imago writes are identical for {@code qemu-img compare} to what was written,
 * clean for {@code qemu-img check}, and laid out as qemu-io lays out the same writes.
 */
class ParallelsDifferentialTest {

    @ParameterizedTest(name = "cluster_size={0}, {1} bytes, old magic {2}")
    @CsvSource({"1M, 5242880, false", "64k, 5242880, false", "64k, 5242880, true", "1536, 3000000, false",
            "4k, 1000, true", "1M, 0, false", "512, 70000, false"})
    void readsAndMapsWhatQemuWrites(String cluster, long size, boolean oldMagic, @TempDir Path dir)
            throws IOException {
        Qemu.require();
        Path image = dir.resolve("img.hds");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "parallels", "-o", "cluster_size=" + cluster, image, size);
        if (oldMagic) {
            // the same image under the old magic: its entries count sectors, so rewrite them too
            byte[] b = Files.readAllBytes(image);
            ByteBuffer h = ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            h.put(0, "WithoutFreeSpace".getBytes(StandardCharsets.US_ASCII));
            Files.write(image, b);
        }
        long virtual = QemuReads.qemuSize(dir, image, "parallels");
        if (virtual >= 4L << 20) {
            QemuReads.qemuIo(dir, "parallels", "img.hds", List.of("write -P 0xa1 0 64k", "write -P 0xb2 3M 1536",
                    "write -z 1M 512k", "write -P 0xc3 " + (virtual - 4096) + " 4096", "write -P 0xd4 100k 200k"));
        } else if (virtual > 0) {
            QemuReads.qemuIo(dir, "parallels", "img.hds", List.of("write -P 0x5e 0 " + Math.min(virtual, 512),
                    "write -P 0x6f " + (virtual - 512) + " 512"));
        }
        QemuReads.assertReadsLikeQemu(dir, image, "parallels");
    }

    /** Seeded random qemu-io workloads. */
    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3})
    void readsRandomQemuWorkloads(long seed, @TempDir Path dir) throws IOException {
        Qemu.require();
        Random r = new Random(seed);
        long size = (4L << 20) + 512L * r.nextInt(8192);
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "parallels", "-o", "cluster_size=" + (4096 << r.nextInt(6)),
                "img.hds", size);
        QemuReads.qemuIo(dir, "parallels", "img.hds", QemuWorkloads.randomWrites(r, size, 20, 1024));
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.hds"), "parallels");
    }

    /** imago's new images are qemu-img's, byte for byte (a parallels header has no UUID or time). */
    @ParameterizedTest(name = "cluster_size={0}, {1} bytes")
    @CsvSource({"1M, 5242880", "64k, 5242880", "1000, 3000000", "512, 1000", "1M, 0", "4k, 300000000"})
    void createsWhatQemuImgCreates(String cluster, long size, @TempDir Path dir) throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "parallels", "-o", "cluster_size=" + cluster, "qemu.hds", size);
        Imago.create(dir.resolve("imago.hds"), "parallels", CreateOptions.builder().size(size)
                .option("cluster_size", cluster).build());
        assertArrayEquals(Files.readAllBytes(dir.resolve("qemu.hds")), Files.readAllBytes(dir.resolve("imago.hds")));
    }

    /**
     * What imago writes qemu-img reads back: {@code compare} finds the bytes written, {@code check} is clean (the
     * in-use mark cleared by the close), and the same writes through qemu-io make the same map and file.
     */
    @ParameterizedTest(name = "cluster_size={0}, seed {1}")
    @CsvSource({"1M, 1", "64k, 2", "4k, 3", "1536, 4"})
    void qemuReadsWhatImagoWrites(String cluster, long seed, @TempDir Path dir) throws IOException {
        Qemu.require();
        Path image = QemuWorkloads.assertRandomFillsReadAsWritten(dir, "parallels", "hds", "cluster_size", cluster,
                seed);
        assertEquals(Files.size(dir.resolve("qemu.hds")), Files.size(image), "file length");
    }

    /** A format extension cluster (empty feature list) read as qemu-img reads it; writable opens go past it. */
    @ParameterizedTest(name = "writable={0}")
    @ValueSource(booleans = {false, true})
    void readsPastAFormatExtension(boolean writable, @TempDir Path dir) throws IOException {
        Qemu.require();
        Path image = dir.resolve("ext.hds");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "parallels", "-o", "cluster_size=64k", image, "1M");
        QemuReads.qemuIo(dir, "parallels", "ext.hds", List.of("write -P 3 0 64k"));
        ParallelsTestImages.appendExtension(image, 64 << 10, new byte[0]);
        QemuReads.assertReadsLikeQemu(dir, image, "parallels");
        if (writable) {
            try (Image img = Imago.opener().path(image).writable(true).open()) {
                img.write(ByteBuffer.wrap(new byte[] {7}), 300_000);
            }
            QemuReads.assertReadsLikeQemu(dir, image, "parallels");
            try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
                assertEquals(3L * (64 << 10), ch.size() - (64 << 10), "a new cluster after the extension");
            }
        }
    }
}
