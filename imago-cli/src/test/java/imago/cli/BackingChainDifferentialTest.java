package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Backing chains through qemu-img and imago on the same command lines: {@code info --backing-chain} over chains of
 * every format that has a backing file (human and JSON), and the message every subcommand prints for an image that
 * cannot be opened (missing, a directory, damaged) or whose chain cannot (a missing or foreign backing file, one or
 * more links down): qemu-img's {@code Could not open 'NAME': ...}, with {@code Could not open backing file: } once per
 * link, the same output, message (program name aside) and exit status.
 */
class BackingChainDifferentialTest {
    @TempDir
    static Path dir;

    private static CliDifferential both;

    /**
     * Chains: l3.qcow over l2.qed over l1.qcow2 over base.raw; d.vmdk over b.vmdk; a qcow2 overlay over an image of
     * every other format, b.FORMAT, each with data at 2M (b.qcow2 also at 1M, b.vmdk at 1M only); data.qcow2 with an
     * external data file, unnamed.qcow2 (over b.qcow2) with one whose name was taken out. Broken: corrupt.qcow2 (cluster bits 0), adir (a
     * directory), missing.qcow2 (its backing file does not exist), foreign.qcow2 (its backing file is raw, recorded as
     * qcow2), deep.qcow2 over missing.qcow2, and sub/missing.qcow2, whose backing name is relative to sub.
     */
    @BeforeAll
    static void images() throws Exception {
        Path img = Qemu.img();
        Qemu.ok(dir, img, "create", "-q", "-f", "raw", "base.raw", "4M");
        Qemu.ok(dir, Qemu.io(), "-f", "raw", "-c", "write -P 1 0 1M", "base.raw");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "l1.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "qed", "-b", "l1.qcow2", "-F", "qcow2", "l2.qed");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow", "-b", "l2.qed", "-F", "qed", "l3.qcow");
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 3 64k 64k", "l3.qcow");
        Qemu.ok(dir, img, "create", "-q", "-f", "vmdk", "b.vmdk", "4M");
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 8 1M 64k", "b.vmdk");
        Qemu.ok(dir, img, "create", "-q", "-f", "vmdk", "-b", "b.vmdk", "-F", "vmdk", "d.vmdk");
        for (String format : List.of("raw", "vpc", "vhdx", "vdi", "parallels", "qcow2", "qed", "qcow")) {
            Qemu.ok(dir, img, "create", "-q", "-f", format, "b." + format, "4M");
            Qemu.ok(dir, Qemu.io(), "-f", format, "-c", "write -P 9 2M 64k", "b." + format);
            Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-b", "b." + format, "-F", format,
                    "o-" + format + ".qcow2");
        }
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 7 1M 64k", "b.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-b", "o-qcow2.qcow2", "-F", "qcow2", "-o",
                "data_file=data.raw", "data.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", "-o",
                "data_file=unnamed.raw", "unnamed.qcow2");
        Qemu.ok(dir, img, "amend", "-o", "data_file=", "unnamed.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "corrupt.qcow2", "1M");
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("corrupt.qcow2").toFile(), "rw")) {
            f.seek(20);
            f.writeInt(0); // cluster bits
        }
        Files.createDirectory(dir.resolve("adir"));
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-u", "-b", "nonexist.qcow2", "-F", "qcow2", "missing.qcow2",
                "4M");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-u", "-b", "base.raw", "-F", "qcow2", "foreign.qcow2", "4M");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-u", "-b", "missing.qcow2", "-F", "qcow2", "deep.qcow2",
                "4M");
        Files.createDirectory(dir.resolve("sub"));
        Files.copy(dir.resolve("missing.qcow2"), dir.resolve("sub/missing.qcow2"));
        both = new CliDifferential(dir);
    }

    @ParameterizedTest
    @ValueSource(strings = {"l1.qcow2", "l2.qed", "l3.qcow", "d.vmdk", "o-raw.qcow2", "o-vpc.qcow2", "o-vhdx.qcow2", "o-vdi.qcow2",
        "o-parallels.qcow2", "data.qcow2"})
    void infoShowsTheChainAsQemuImg(String image) throws Exception {
        both.agree("info", "--backing-chain " + image, "raw");
        both.agree("info", "--backing-chain --output=json " + image, "raw");
    }

    /**
     * {@code rebase} (safe, and {@code -u}) of an image of each format that names a backing file onto a backing file of
     * each format: the same output, messages, status, and afterwards the same content, backing file and format, and
     * {@code qemu-img check} clean. The top holds data at 0; its old backing file b.qcow2 (or b.vmdk) holds data a
     * safe rebase must copy up; the new one holds data at 2M that must not show through where the old one was zero.
     * qcow and vmdk cannot change their backing file (qemu-img refuses after its safe copy, as imago does); qed
     * rewrites the name in its header (and records only whether the backing file is raw).
     */
    @ParameterizedTest
    @CsvSource({"qcow2, raw", "qcow2, qcow2", "qcow2, qed", "qcow2, qcow", "qcow2, vmdk", "qcow2, vpc", "qcow2, vhdx",
        "qcow2, vdi", "qcow2, parallels", "qcow, raw", "qcow, qcow2", "vmdk, vmdk", "qed, raw", "qed, qcow2",
        "qed, qed"})
    void rebasesOntoEveryFormatAsQemuImg(String format, String backingFormat) throws Exception {
        String old = format.equals("vmdk") ? "vmdk" : "qcow2";
        CliDifferential.Preparation top = out -> {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", format, "-b", "b." + old, "-F", old, out, "4M");
            Qemu.ok(dir, Qemu.io(), "-f", format, "-c", "write -P 5 0 64k", out);
        };
        for (String mode : List.of("-u ", "")) {
            String line = mode + "-b b." + backingFormat + " -F " + backingFormat + " OUT";
            CliDifferential.Outcome o = both.agree("rebase", line, format, top, true);
            // also after a refusal: the safe copy happens first in both
            Qemu.Output compared = Qemu.compare(o.qemuOut(), format, o.imagoOut(), format);
            assertEquals(0, compared.status(), () -> line + ": " + compared.out() + compared.err());
            assertEquals(backing(o.qemuOut()), backing(o.imagoOut()), line);
        }
    }

    /**
     * A qed header that has no room for the new name (4 KiB clusters, one header cluster: 4032 bytes after the
     * header): qemu-img's refusal, with its words and status, and the image as it was.
     */
    @Test
    void qedRebaseRefusesANameItsHeaderCannotHold() throws Exception {
        String line = "-u -b " + "n".repeat(4033) + " -F raw OUT";
        CliDifferential.Outcome o = both.agree("rebase", line, "qed", QED_4K, true);
        assertEquals(backing(o.qemuOut()), backing(o.imagoOut()), line);
        assertEquals(0, Qemu.check(o.imagoOut(), "qed").status(), line);
    }

    /**
     * Long names ({@code ./} repeated, so that they name a file that exists): one past the first sector, which imago
     * writes beside the old name before the header switches to it, and one that fills the header cluster, which has
     * no room beside the old name (QEMU's one write): the same answer and backing file as qemu-img's, both images
     * equal and clean.
     */
    @ParameterizedTest
    @ValueSource(ints = {497, 2013}) // names of 1000 and 4032 bytes
    void qedRebaseWritesLongNamesThatFit(int dots) throws Exception {
        String name = "./".repeat(dots) + "b.qcow";
        Path theirs = dir.resolve("fit-q" + dots + ".qed");
        Path ours = dir.resolve("fit-i" + dots + ".qed");
        QED_4K.prepare(theirs);
        QED_4K.prepare(ours);
        FormatCliDifferential.assertAnswersAsQemuImg(dir, new String[] {"rebase", "-u", "-b", name, "-F", "qcow"},
                theirs, ours);
        assertEquals(backing(theirs), backing(ours));
        assertEquals(0, Qemu.compare(theirs, "qed", ours, "qed").status());
        assertEquals(0, Qemu.check(ours, "qed").status());
    }

    /** A qed image over b.qcow2 with 4 KiB clusters: one header cluster. */
    private static final CliDifferential.Preparation QED_4K = out -> Qemu.ok(dir, Qemu.img(), "create", "-q", "-f",
            "qed", "-o", "cluster_size=4096", "-b", "b.qcow2", "-F", "qcow2", out, "4M");

    /**
     * A qcow2 image whose external data file has lost its name ({@code amend -o data_file=}): {@code info} shows it
     * as qemu-img does, since it reads no data, and the commands that need the data refuse it in qemu-img's words.
     */
    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"info; unnamed.qcow2", "info; --output=json unnamed.qcow2",
        "info; --backing-chain unnamed.qcow2", "info; --backing-chain --output=json unnamed.qcow2",
        "info; -U -f qcow2 unnamed.qcow2", "map; unnamed.qcow2", "check; unnamed.qcow2",
        "convert; -O raw unnamed.qcow2 OUT", "compare; unnamed.qcow2 base.raw", "measure; -O qcow2 unnamed.qcow2",
        "snapshot; -l unnamed.qcow2", "rebase; -u -b b.raw -F raw unnamed.qcow2"})
    void unnamedDataFileAsQemuImg(String subcommand, String line) throws Exception {
        both.agree(subcommand, line, "raw");
    }

    /** The backing file and format {@code qemu-img info} shows for {@code image}. */
    private static String backing(Path image) {
        return Qemu.ok(dir, Qemu.img(), "info", image).lines().filter(l -> l.startsWith("backing file"))
                .reduce("", (a, b) -> a + b + "\n");
    }

    /** Every subcommand that opens an image, on every way an open fails. */
    static Stream<Arguments> openFailures() {
        List<String> broken = List.of("nope.qcow2", "adir", "corrupt.qcow2");
        List<String> brokenChains = List.of("missing.qcow2", "foreign.qcow2", "deep.qcow2", "sub/missing.qcow2");
        // the subcommand, and its line with X for the image; the first group fails on any of them, the second
        // opens the image alone (a broken chain does not matter) and so runs on the broken images only
        List<String[]> opening = List.of(new String[] {"info", "--backing-chain X"},
                new String[] {"info", "--backing-chain --output=json X"}, new String[] {"map", "X"},
                new String[] {"compare", "base.raw X"}, new String[] {"convert", "-O raw X OUT"},
                new String[] {"snapshot", "-l X"}, new String[] {"resize", "X +1M"}, new String[] {"commit", "X"},
                new String[] {"rebase", "-b base.raw -F raw X"}, new String[] {"amend", "-o lazy_refcounts=on X"},
                new String[] {"dd", "if=X of=OUT"}, new String[] {"create", "-f qcow2 -F qcow2 -b X OUT"},
                new String[] {"check", "X"}, new String[] {"check", "--output=json X"});
        List<String[]> alone = List.of(new String[] {"info", "X"},
                new String[] {"measure", "-O qcow2 X"}, new String[] {"bench", "-c 1 X"},
                new String[] {"bitmap", "--add X b"}, new String[] {"rebase", "-u -b base.raw -F raw X"});
        Stream.Builder<Arguments> out = Stream.builder();
        for (String[] c : opening) {
            for (String image : Stream.concat(broken.stream(), brokenChains.stream()).toList()) {
                out.add(Arguments.of(c[0], c[1].replace("X", image)));
            }
        }
        for (String[] c : alone) {
            for (String image : broken) {
                out.add(Arguments.of(c[0], c[1].replace("X", image)));
            }
        }
        return out.build();
    }

    @ParameterizedTest
    @MethodSource("openFailures")
    void openFailuresAsQemuImg(String subcommand, String line) throws Exception {
        both.agree(subcommand, line, "raw");
    }
}
