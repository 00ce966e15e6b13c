package imago.qed.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.QemuWorkloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Both ways against qemu-img: images qemu-img creates and qemu-io writes read in imago byte for byte as
 * {@code qemu-img convert} reads them and map as {@code qemu-img map} maps them, with and without backing files;
 * images imago creates are qemu-img's files byte for byte; the same qemu-io commands through imago leave the same
 * file as through QEMU.
 */
class QedDifferentialTest {
    @TempDir
    Path dir;

    /** Writes, partial writes, aligned and unaligned zero writes, the last sector. */
    static List<String> workload(long size, int cluster) {
        return List.of("write -P 0xa1 0 " + (3 * cluster), "write -P 0xb2 " + (5L * cluster + 700) + " 1536",
                "write -z " + (8L * cluster) + " " + (2L * cluster), "write -z " + (cluster + 512) + " 1024",
                "write -P 0xc3 " + (12L * cluster - 512) + " 4096", "write -z " + (20L * cluster) + " " + cluster,
                "write -P 0xd4 " + (size - 512) + " 512", "write -P 0xe5 " + (20L * cluster + 100) + " 100");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"cluster_size=65536", "cluster_size=4096,table_size=2", "cluster_size=4096,table_size=16",
            "cluster_size=8192,table_size=4"})
    void readsAndMapsWhatQemuWrites(String options) throws IOException {
        int cluster = Integer.parseInt(options.replaceAll(".*cluster_size=(\\d+).*", "$1"));
        long size = 40L * cluster + 3 * 512;
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qed", "-o", options, "img.qed", size);
        QemuReads.qemuIo(dir, "qed", "img.qed", workload(size, cluster));
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.qed"), "qed");
    }

    @ParameterizedTest(name = "backing {0}")
    @ValueSource(strings = {"raw", "qed", "qcow2"})
    void readsAndMapsOverBackingFiles(String backingFormat) throws IOException {
        int cluster = 4096;
        long size = 48L * cluster;
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", backingFormat, "base.img", size);
        QemuReads.qemuIo(dir, backingFormat, "base.img", List.of("write -P 0x11 0 " + size,
                "write -z " + (10L * cluster) + " " + (4L * cluster)));
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qed", "-o", "cluster_size=4096,table_size=2", "-b",
                "base.img", "-F", backingFormat, "img.qed");
        QemuReads.qemuIo(dir, "qed", "img.qed", workload(size, cluster));
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.qed"), "qed");
        try (Image img = Imago.opener().path(dir.resolve("img.qed")).open()) {
            assertEquals(backingFormat, img.backing().orElseThrow().format());
        }
    }

    /** Seeded random qemu-io workloads. */
    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3})
    void randomWorkloadsReadAndMapLikeQemu(long seed) throws IOException {
        Random r = new Random(seed);
        int cluster = 4096 << r.nextInt(3);
        long size = 512L * (200 + r.nextInt(2000));
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qed", "-o", "table_size=2,cluster_size=" + cluster, "img.qed",
                size);
        QemuReads.qemuIo(dir, "qed", "img.qed", QemuWorkloads.randomWrites(r, size, 25, 64));
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.qed"), "qed");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"|1000", "|24M", "cluster_size=4096|100M", "cluster_size=4096,table_size=1|1M",
            "table_size=16|1G", "cluster_size=65536|b:base.raw:raw", "cluster_size=4096|b:base.qcow2:qcow2"})
    void createWritesQemuImgsFile(String spec) throws IOException {
        QemuWorkloads.assertCreatesQemuImgsFile(dir, "qed", spec.substring(0, spec.indexOf('|')),
                spec.substring(spec.indexOf('|') + 1));
    }

    /** The same qemu-io commands through imago's Image leave qemu-io's file, byte for byte. */
    @Test
    void writesLeaveTheFileQemuIoLeaves() throws IOException {
        int cluster = 4096;
        long size = 64L * cluster;
        for (String f : List.of("ours.qed", "theirs.qed")) {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qed", "-o", "cluster_size=4096,table_size=2", f, size);
        }
        List<String> commands = workload(size, cluster);
        QemuReads.qemuIo(dir, "qed", "theirs.qed", commands);
        try (Image img = Imago.opener().path(dir.resolve("ours.qed")).writable(true).open()) {
            QemuWorkloads.writeThroughImago(img, commands);
        }
        assertArrayEquals(Files.readAllBytes(dir.resolve("theirs.qed")), Files.readAllBytes(dir.resolve("ours.qed")));
        assertEquals(0, Qemu.check(dir.resolve("ours.qed"), "qed").status());
    }
}
