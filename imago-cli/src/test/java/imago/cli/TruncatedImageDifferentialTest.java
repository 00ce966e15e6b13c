package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Images whose file ends before what their tables map (a download or a copy cut short), as qemu-img 7.2 answers for
 * them: QEMU's file protocol reads the bytes past the end of the file as zeroes, so a data cluster or grain there
 * reads as zeroes, a table there maps nothing, and a header cut short is judged by its zeroed fields. Each format's
 * image is made by qemu-img and qemu-io, cut with a few lengths (inside a data cluster, before a whole one, inside a
 * table, inside the header region), and {@code info}, {@code map --output=json}, {@code check}, {@code convert -O raw}
 * and {@code compare} must print what qemu-img prints, with its exit status and the same bytes; qemu-io's
 * {@code read -v} must print what qemu-io prints. Writes to a qcow2 image cut short extend the file as QEMU does.
 */
class TruncatedImageDifferentialTest {
    /** The formats whose images are cut, each made by qemu-img create and three qemu-io writes. */
    private static final List<String> FORMATS = List.of("qcow2", "vmdk", "vpc", "vhdx", "vdi", "qed", "parallels",
            "qcow");

    @TempDir
    static Path dir;

    private static CliDifferential both;

    /** Each format's whole image, {@code full.FORMAT}, the raw bytes all of them hold, and a stream vmdk. */
    @BeforeAll
    static void images() throws IOException {
        Path img = Qemu.img();
        for (String format : FORMATS) {
            String name = "full." + format;
            Qemu.ok(dir, img, "create", "-q", "-f", format, name, "4M");
            Qemu.ok(dir, Qemu.io(), "-f", format, "-c", "write -P 1 0 64k", "-c", "write -P 2 1M 64k", "-c",
                    "write -P 3 3M 128k", name);
        }
        Qemu.ok(dir, img, "convert", "-f", "qcow2", "-O", "raw", "full.qcow2", "ref.raw");
        // compressed clusters, after the tables: a cut falls among them
        Qemu.ok(dir, img, "convert", "-c", "-f", "qcow2", "-O", "qcow2", "full.qcow2", "full.compressed");
        // a stream of grains that do not compress: a cut falls inside one
        byte[] random = new byte[4 << 20];
        Random r = new Random(7);
        for (int at : new int[] {0, 1 << 20, 3 << 20, (3 << 20) + (64 << 10)}) {
            byte[] grain = new byte[64 << 10];
            r.nextBytes(grain);
            System.arraycopy(grain, 0, random, at, grain.length);
        }
        Files.write(dir.resolve("random.raw"), random);
        Qemu.ok(dir, img, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "random.raw",
                "full.stream");
        both = new CliDifferential(dir);
    }

    /** {@code source} cut to {@code length} bytes, as {@code truncate -s} cuts it; returns its name. */
    private static String cut(String source, long length) throws IOException {
        String name = "cut" + length + "-" + source;
        Files.copy(dir.resolve(source), dir.resolve(name), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve(name).toFile(), "rw")) {
            f.setLength(length);
        }
        return name;
    }

    /**
     * Every command on the image cut to {@code length}: the same output, errors, exit status and raw bytes as
     * qemu-img's.
     */
    @ParameterizedTest(name = "{0} cut to {1} bytes")
    @CsvSource(delimiter = ';', value = {
        // qcow2: inside the last data cluster (the L1 table intact), inside the L2 table, inside the refcount
        // table (the L1 table past the end), inside the header
        "qcow2; 500000", "qcow2; 262244", "qcow2; 70000", "qcow2; 100",
        // monolithicSparse: inside the last grain, before every grain, inside the header
        "vmdk; 240000", "vmdk; 65536", "vmdk; 100",
        // vpc: the footer at the end cut (QEMU reads the copy at 0), a block cut, the dynamic header, the footer copy
        "vpc; 4197000", "vpc; 3000000", "vpc; 1000", "vpc; 300",
        // vhdx: metadata cut inside its table, metadata region past the end
        "vhdx; 3145800", "vhdx; 300000",
        // vdi: inside a block, before one, inside the block map, inside the header
        "vdi; 3000000", "vdi; 2098176", "vdi; 700", "vdi; 200",
        // qed: inside the last cluster, inside the header
        "qed; 800000", "qed; 200",
        // parallels: inside the last cluster, inside the catalog, inside the header
        "parallels; 3500000", "parallels; 70", "parallels; 30",
        // qcow: inside the last cluster, inside the L2 table
        "qcow; 200000", "qcow; 6000"})
    void answersAsQemuImg(String format, long length) throws Exception {
        commands(cut("full." + format, length), format, "ref.raw", List.of("info", "map", "check", "convert",
                "compare"));
    }

    /**
     * Cuts where QEMU's drivers fail a request: with {@code EINVAL} a qed data run that starts past the end, an L2
     * table past the end, vmdk compressed grains that do not decode; with {@code EIO} qcow2 compressed clusters. {@code convert -m 1}: qemu-img prints one error line
     * per coroutine that fails.
     */
    @ParameterizedTest(name = "{0} cut to {1} bytes")
    @CsvSource(delimiter = ';', value = {"qed; 720896", "qed; 500000", "stream; 262000", "stream; 150000",
        "stream; 70000", "compressed; 326192"})
    void failsAsQemuImg(String source, long length) throws Exception {
        String format = source.equals("stream") ? "vmdk" : source.equals("compressed") ? "qcow2" : source;
        commands(cut("full." + source, length), format, source.equals("stream") ? "random.raw" : "ref.raw",
                List.of("info", "map", "check", "convert", "compare"));
    }

    /** An external data file cut short: the clusters past its end read as zeroes, as QEMU reads them. */
    @Test
    void aDataFileCutShortReadsAsZeroes() throws Exception {
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "-o", "data_file=cut.data", "data.qcow2", "4M");
        Qemu.ok(dir, Qemu.io(), "-f", "qcow2", "-c", "write -P 1 0 64k", "-c", "write -P 2 1M 64k", "-c",
                "write -P 3 3M 128k", "data.qcow2");
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("cut.data").toFile(), "rw")) {
            f.setLength(1100000);
        }
        commands("data.qcow2", "qcow2", "ref.raw", List.of("info", "map", "check", "convert", "compare"));
    }

    /** vhdx blocks past the end of the file: QEMU's open refuses them in its words, and its check counts them. */
    @ParameterizedTest(name = "vhdx cut to {0} bytes")
    @CsvSource({"9000000", "8388608"})
    void vhdxBlocksPastTheEnd(long length) throws Exception {
        commands(cut("full.vhdx", length), "vhdx", "ref.raw", List.of("info", "map", "check", "convert", "compare"));
    }

    private static void commands(String image, String format, String raw, List<String> which) throws Exception {
        for (String command : which) {
            switch (command) {
                case "info" -> both.agree("info", "-f " + format + " " + image, "raw");
                case "map" -> both.agree("map", "--output=json -f " + format + " " + image, "raw");
                case "check" -> both.agree("check", "-f " + format + " " + image, "raw");
                case "convert" -> both.agree("convert", "-m 1 -f " + format + " -O raw " + image + " OUT", "raw");
                case "compare" -> both.agree("compare", "-f " + format + " -F raw " + image + " " + raw, "raw");
                default -> throw new IllegalArgumentException(command);
            }
        }
    }

    /** qemu-io's {@code read -v} across a cluster cut by the end of the file and one past it, read-only. */
    @ParameterizedTest(name = "{0} cut to {1} bytes")
    @CsvSource(delimiter = ';', value = {"qcow2; 500000", "vmdk; 240000", "vdi; 3000000", "qed; 800000",
        "parallels; 3500000", "qcow; 200000", "stream; 150000"})
    void readsAsQemuIo(String source, long length) throws Exception {
        String image = cut("full." + source, length);
        String format = source.equals("stream") ? "vmdk" : source;
        // read-only, both on the one file (no copies to compare afterwards: the file is damaged by design)
        QemuIoDifferential.agree(dir, null, false, List.of("-r", "-f", format, dir.resolve(image).toString()),
                List.of("read -v 1048320 512", "read -v 3276288 512", "read -P 0 3276800 4096"), false);
    }

    /**
     * Writes to a qcow2 image cut inside a data cluster: into that cluster (past the end of the file) and into a new
     * one. Both tools extend the file as QEMU does and leave an image qemu-img check finds clean, the same bytes and
     * the same map.
     */
    @Test
    void writesToACutQcow2ExtendItAsQemu() throws Exception {
        String image = cut("full.qcow2", 500000);
        Path theirs = dir.resolve("w-theirs.qcow2");
        Path ours = dir.resolve("w-ours.qcow2");
        Files.copy(dir.resolve(image), theirs, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.copy(dir.resolve(image), ours, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        QemuIoDifferential.agree(dir, new QemuIoDifferential.Image(theirs, ours, "qcow2"), true,
                List.of("-f", "qcow2"), List.of("write -P 9 3215360 4096", "write -P 8 2M 64k", "read -P 9 3215360 4096",
                        "read -P 0 3141632 4096"), false);
        assertEquals(0, Qemu.check(ours, "qcow2").status());
    }

    /**
     * A write that allocates in an image cut before clusters its tables still name: QEMU puts the new cluster at the
     * end of the file, over one of those (vmdk, qcow, qed: its reads then return the new bytes there, and vmdk's check
     * fails); imago puts it after everything the tables name, so what lay past the end still reads as zeroes.
     */
    @ParameterizedTest(name = "{0} cut to {1} bytes")
    @CsvSource(delimiter = ';', value = {"vmdk; 196608; 3145728", "qcow; 143360; 3145728",
        // qed: the cluster at 786432 holds 13568 bytes of the file, and zeroes after them
        "qed; 800000; 3225600"})
    void aNewClusterGoesPastEveryMappedOne(String format, long length, long past) throws Exception {
        String image = cut("full." + format, length);
        Run.as("qemu-io", "", "-f", format, "-c", "write -P 9 2M 64k", dir.resolve(image).toString()).ok();
        String read = Qemu.ok(dir, Qemu.io(), "-r", "-f", format, "-c", "read -P 9 2M 64k", "-c",
                "read -P 0 " + past + " 4k", image);
        assertTrue(read.contains("read 4096/4096 bytes at offset " + past), read);
        assertTrue(!read.contains("Pattern verification failed"), read);
    }
}
