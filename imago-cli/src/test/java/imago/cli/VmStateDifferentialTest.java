package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import imago.testkit.Qemu;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * qemu-io's {@code read -b} and {@code write -b} on qcow2 (the VM state area, past the virtual disk), through qemu-io
 * and imago invoked as {@code qemu-io} ({@link QemuIoDifferential}: the same output lines and exit status, the same
 * guest contents and allocation, {@code qemu-img check} clean), and then both ways: the two files are the same byte
 * for byte (imago puts every cluster, L1 table and header field where QEMU does), qemu-io reads imago's VM state back
 * and imago reads qemu-io's. The sample covers the L1 table growing (more than once, and refused past QEMU's 32 MiB
 * limit with EFBIG), extended L2 entries, qcow2 v2, a backing file whose data shows through the area, an internal
 * snapshot that shares the area's tables, external data files (raw or not), and the requests QEMU's block layer
 * fails (EIO) or qemu-io refuses before.
 */
class VmStateDifferentialTest {
    /** Writes that grow the L1 table twice (1 → 2 → 5 entries), partial and unaligned to clusters, then reads. */
    private static final String GROW = "write -b -P 1 0 64k|write -b -P 2 1M 200k|write -P 3 0 4k|write -b -P 4 1G 512|"
            + "write -b -P 5 1G+1k 3k|read -b -P 1 0 64k|read -b -P 2 1M 200k|read -b -P 0 64k 960k|read -b -P 4 1G 512|"
            + "read -b -P 0 1G+512 512|read -b -P 5 1G+1k 3k|read -b -v 1M 32|read -b -C -P 2 1M 512|read -P 3 0 4k|"
            + "read -P 0 4k 4M-4k|write -b -q -P 6 3M 512|read -b -q -P 6 3M 512|read -b -P 6 3M 1k|"
            + "write -b -C -P 7 2G 64k|read -b -l 512 -s 512 -P 7 2G 4k";
    /** The requests refused before the format is asked, and those QEMU's block layer fails with EIO. */
    private static final String REFUSED = "write -b 512 1|read -b 1 512|write -b -z 0 512|write -b -f 0 512|"
            + "write -b -u 0 512|write -b -P 1 0 0|read -b 0 0|read -b 0x7fffffffbffffe00 512|"
            + "read -b 0x7fffffffc0000000 512|write -b 0x7fffffffc0000000 512|read -b 0x7fffffffa0000000 512|"
            + "read -b -P 0 0x7fffffff9ffffe00 512|write -b 0x7fffffff9ffffe00 512|write -b -c -P 3 0 64k|"
            + "read -b -P 3 0 64k";
    /** 512-byte clusters: an L1 entry maps 32 KiB, so QEMU's 32 MiB table limit is at 128 GiB. */
    private static final String LIMIT = "write -b -P 1 100M 64k|read -b -P 1 100M 64k|write -b -P 2 137434726400 512|"
            + "read -b -P 0 137434726400 512|write -b -P 3 0 512|read -b -P 3 0 512";
    private static final String BACKED = "read -b -P 0x5a 0 128k|read -b -P 0 128k 64k|write -b -P 7 1k 1k|"
            + "read -b -P 0x5a 0 1k|read -b -P 7 1k 1k|read -b -P 0x5a 2k 62k|write -b -P 8 200k 4k|read -b -P 0 196k 4k";
    private static final String SNAPSHOT = "read -b -P 1 0 64k|write -b -P 2 0 512|read -b -P 2 0 512|"
            + "read -b -P 1 512 64512|write -P 8 4k 4k|write -b -P 3 1G 4k|read -b -P 3 1G 4k";
    private static final String SMALL = "write -b -P 1 4k 4k|read -b -P 0 0 4k|read -b -P 1 4k 4k|read -b -P 0 8k 56k|"
            + "write -b -P 2 1M 300k|read -b -P 2 1M 300k|write -P 9 0 64k|write -b -P 3 33k 3k|read -b -P 3 33k 3k";

    @TempDir
    Path dir;

    /**
     * One case.
     *
     * @param name what it covers
     * @param options qemu-img create options (with {@code BASE} for the backing file's name)
     * @param setup qemu-io commands run on the image before both sides get their copy (then, with a snapshot name
     *        after a {@code >}, {@code qemu-img snapshot -c} of it)
     * @param script the commands both sides run
     * @param check the {@code read -b -P} commands each side runs on the other's image
     */
    record Case(String name, String options, String setup, String script, String check) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case("growing the L1 table", "", "", GROW, "read -b -P 1 0 64k|read -b -P 2 1M 200k|"
                        + "read -b -P 4 1G 512|read -b -P 6 3M 512|read -b -P 7 2G 64k"),
                new Case("requests refused or failed", "", "", REFUSED, "read -b -P 0 64k 64k"),
                new Case("512-byte clusters up to QEMU's L1 limit", "cluster_size=512", "", LIMIT,
                        "read -b -P 1 100M 64k|read -b -P 3 0 512"),
                new Case("extended L2 entries", "extended_l2=on", "", SMALL, "read -b -P 1 4k 4k|read -b -P 2 1M 300k"),
                new Case("qcow2 v2", "compat=0.10", "", SMALL, "read -b -P 1 4k 4k|read -b -P 3 33k 3k"),
                new Case("a backing file longer than the area's offset", "backing_file=BASE,backing_fmt=qcow2", "",
                        BACKED, "read -b -P 7 1k 1k|read -b -P 0x5a 2k 62k|read -b -P 8 200k 4k"),
                new Case("an internal snapshot sharing the area", "", "write -b -P 1 0 64k|write -P 7 0 128k>s1",
                        SNAPSHOT, "read -b -P 2 0 512|read -b -P 1 512 64512|read -b -P 3 1G 4k"),
                new Case("an external data file", "data_file=DATA", "", SMALL, "read -b -P 2 1M 300k"),
                new Case("a raw external data file", "data_file=DATA,data_file_raw=on", "", SMALL,
                        "read -b -P 1 4k 4k|read -b -P 3 33k 3k"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void actsAsQemuIo(Case c) throws Exception {
        Qemu.require();
        Path base = dir.resolve("base.qcow2");
        if (c.options().contains("BASE")) {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", base, "1G");
            Qemu.ok(dir, Qemu.io(), "-c", "write -P 0x5a 512M 128k", "-c", "write -P 0x11 0 64k", base);
        }
        // side directories named alike in length: an image names its data file by its full path
        Path theirs = image(c, "qemu");
        Path ours = image(c, "mine");
        QemuIoDifferential.agree(dir, new QemuIoDifferential.Image(theirs, ours, "qcow2"), true, List.of("-f", "qcow2"),
                List.of(c.script().split("\\|")), false);
        byte[] mine = Files.readAllBytes(ours);
        if (c.options().contains("DATA")) {
            String named = dataFile(ours).toString();
            byte[] theirName = dataFile(theirs).toString().getBytes(StandardCharsets.UTF_8);
            int at = new String(mine, StandardCharsets.ISO_8859_1).indexOf(named);
            System.arraycopy(theirName, 0, mine, at, theirName.length);
        }
        assertEquals(-1, Arrays.mismatch(Files.readAllBytes(theirs), mine), "the files differ: " + c);
        if (c.options().contains("DATA")) {
            assertEquals(-1, Files.mismatch(dataFile(theirs), dataFile(ours)), "the data files differ: " + c);
        }
        // both ways: each reads the other's VM state
        List<String> reads = List.of(c.check().split("\\|"));
        List<Object> qemuIo = new ArrayList<>(List.of(Qemu.io()));
        qemuIo.addAll(readsOf(reads, ours));
        Qemu.Output qemuReadsOurs = Qemu.run(dir, qemuIo.toArray());
        Run.Result oursReadsTheirs = Run.as("qemu-io", "", readsOf(reads, theirs).toArray(String[]::new));
        for (String out : List.of(qemuReadsOurs.out(), oursReadsTheirs.out())) {
            assertFalse(out.contains("failed"), c + ": " + out);
            assertEquals(reads.size(), out.lines().filter(l -> l.startsWith("read ")).count(), out);
        }
        assertEquals(List.of(0, 0), List.of(qemuReadsOurs.status(), oursReadsTheirs.status()),
                qemuReadsOurs.err() + oursReadsTheirs.err());
    }

    /** The arguments {@code -f qcow2 -c READ... image}. */
    private static List<String> readsOf(List<String> reads, Path image) {
        List<String> args = new ArrayList<>(List.of("-f", "qcow2"));
        for (String r : reads) {
            args.add("-c");
            args.add(r);
        }
        args.add(image.toString());
        return args;
    }

    private static Path dataFile(Path image) {
        return image.resolveSibling(image.getFileName() + ".data");
    }

    /**
     * A copy for {@code side} of the case's image, made once, so that a snapshot's date is the same in both copies;
     * with a data file, each side's own image (QEMU 7.2 opens a data file's relative name from its working directory,
     * so each image names its data file by its full path, which differs in the side's directory name only).
     */
    private Path image(Case c, String side) throws Exception {
        if (c.options().contains("DATA")) {
            return made(c, Files.createDirectories(dir.resolve(side)));
        }
        Path setup = dir.resolve("setup");
        if (!Files.isDirectory(setup)) {
            made(c, Files.createDirectories(setup));
        }
        Path d = Files.createDirectories(dir.resolve(side));
        return Files.copy(setup.resolve("img.qcow2"), d.resolve("img.qcow2"));
    }

    private static Path made(Case c, Path d) throws Exception {
        Path image = d.resolve("img.qcow2");
        List<Object> create = new ArrayList<>(List.of(Qemu.img(), "create", "-q", "-f", "qcow2"));
        if (!c.options().isEmpty()) {
            create.addAll(List.of("-o", c.options().replace("BASE", d.resolveSibling("base.qcow2").toString())
                    .replace("DATA", dataFile(image).toString())));
        }
        create.addAll(List.of(image, "4M"));
        Qemu.ok(d, create.toArray());
        String[] setup = c.setup().split(">");
        if (!setup[0].isEmpty()) {
            List<Object> io = new ArrayList<>(List.of(Qemu.io(), "-f", "qcow2"));
            for (String command : setup[0].split("\\|")) {
                io.addAll(List.of("-c", command));
            }
            io.add(image);
            Qemu.ok(d, io.toArray());
        }
        if (setup.length > 1) {
            Qemu.ok(d, Qemu.img(), "snapshot", "-c", setup[1], image);
        }
        return image;
    }
}
