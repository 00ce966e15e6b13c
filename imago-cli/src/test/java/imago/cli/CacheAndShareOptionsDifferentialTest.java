package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.nio.file.Path;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code -U/--force-share} and the {@code -t}/{@code -T} cache modes in every qemu-img subcommand that takes them,
 * and {@code bench}'s options, against qemu-img 7.2 on the same command lines: accepted where qemu-img accepts them,
 * a bad mode refused in its words and with its exit status, the same output (bench's timing masked) and image;
 * {@code -U} and other options a subcommand does not have, and too few or too many file names, refused with
 * qemu-img's two lines.
 */
class CacheAndShareOptionsDifferentialTest {
    private static final Pattern TIMING = Pattern.compile("Run completed in [0-9.]+ seconds");

    @TempDir
    static Path dir;

    private static CliDifferential both;

    /** base.qcow2 (1M, data at 0); each case's OUT is a qcow2 overlay of its own base with data at 64k. */
    @BeforeAll
    static void images() {
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 1 0 64k", "base.qcow2");
        both = new CliDifferential(dir);
    }

    private static void overlay(Path out) {
        Path base = Path.of(out + ".base");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", base, "1M");
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 1 0 64k", base);
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", out);
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 2 64k 64k", out);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"check; -U -T none OUT", "check; -T bogus OUT", "check; -T writethrough OUT",
        "commit; -t none OUT", "commit; -t bogus OUT", "compare; -U -T none base.qcow2 OUT",
        "compare; -T bogus base.qcow2 OUT", "rebase; -t bogus -b base.qcow2 -F qcow2 OUT",
        "rebase; -T bogus -b base.qcow2 -F qcow2 OUT", "rebase; -t writeback -T none -b base.qcow2 -F qcow2 OUT",
        "rebase; -u -t none -T none -U -b base.qcow2 -F qcow2 OUT", "amend; -t bogus -o lazy_refcounts=on OUT",
        "amend; -t none -o lazy_refcounts=on OUT", "info; -U OUT", "info; --force-share --backing-chain OUT",
        "map; -U --output=json OUT", "measure; -U -O qcow2 OUT", "snapshot; -U -l OUT", "dd; -U if=OUT of=x.raw",
        "bench; -c 1 -t bogus OUT", "bench; -c 1 -i bogus OUT", "bench; -c 1 -i native OUT",
        "bench; -c 1 -o 2M OUT", "bench; -c 1 --flush-interval=1 OUT", "bench; -c 1 -w -d 4 --flush-interval=2 OUT",
        "bench; -c 1 -w --pattern=300 OUT", "bench; -c 1 -S x OUT", "bench; -c 1 -s x OUT", "bench; -c 1 -o x OUT",
        "bench; -c 1 -o 99999E OUT", "bench; -c 1 -o -1 OUT", "bench; -c x OUT", "bench; -c -1 OUT",
        "bench; -c 1 -d x OUT", "bench; -c 1 -s 2G OUT", "bench; -c 1 -w --pattern=x OUT",
        "bench; -c 1 -w --flush-interval=x OUT", "bench; -c 1 OUT OUT",
        "bench; -c 1", "resize; -U OUT 2M", "resize; --force-share OUT 2M", "resize; -qU OUT 2M", "resize; OUT",
        "resize; OUT 1M 2M", "commit; -U OUT", "create; -U -f qcow2 OUT 1M", "amend; -U -o lazy_refcounts=on OUT",
        "bitmap; -U --add OUT b0", "info; --bogus OUT", "info; OUT OUT", "check; OUT OUT", "map; -Z OUT",
        "compare; OUT", "snapshot; -l", "rebase; -u -b base.qcow2"})
    void agreeWithQemuImg(String subcommand, String line) throws Exception {
        both.agree(subcommand, line, "qcow2", CacheAndShareOptionsDifferentialTest::overlay, true);
    }

    /** Runs that succeed (and print the time they took, which is masked): the same lines otherwise. */
    @ParameterizedTest
    @ValueSource(strings = {"-c 3 -U -t none OUT", "-c 3 -i native -t none OUT", "-c 3 -n -t directsync OUT",
        "-c 3 -i threads -d 2 -s 512 -S 1024 -o 4096 OUT", "-c 4 -w -d 2 --flush-interval=2 OUT",
        "-c 4 -w --flush-interval=2 -d 1 --no-drain --pattern=7 OUT", "-q -c 2 OUT", "-c 2 -f qcow2 OUT",
        "-c 1 -s 0 OUT", "-c 0 OUT", "-c 2 -w -S 0 OUT", "-c 2 -o 1048064 -s 1024 OUT", "-c 1 --no-drain OUT",
        "-c 2 -w --no-drain OUT", "-c 1 -i io_uring -t none OUT", "-c 1 -f raw OUT",
        "--flush-interval=2 -c 4 -w -d 2 --pattern=0xff -q OUT"})
    void benchPrintsWhatQemuImgPrints(String line) throws Exception {
        Path qemuOut = dir.resolve("bench-q.qcow2");
        Path imagoOut = dir.resolve("bench-i.qcow2");
        java.nio.file.Files.deleteIfExists(qemuOut);
        java.nio.file.Files.deleteIfExists(imagoOut);
        overlay(qemuOut);
        overlay(imagoOut);
        Qemu.Output theirs = Qemu.run(dir, (Object[]) (Qemu.img() + " bench " + line.replace("OUT", qemuOut.toString()))
                .split(" "));
        Run.Result ours = Run.imago(("bench " + line.replace("OUT", imagoOut.toString())).split(" "));
        assertEquals(theirs.status(), ours.status(), line + ": " + theirs.err() + " / " + ours.err());
        assertEquals(TIMING.matcher(theirs.out()).replaceAll("T"), TIMING.matcher(ours.out()).replaceAll("T"), line);
        assertEquals(theirs.err().replace("qemu-img: ", ""), ours.err().replace("imago: ", ""), line);
        assertEquals(0, Qemu.compare(qemuOut, "qcow2", imagoOut, "qcow2").status(), line);
        assertEquals(0, Qemu.check(imagoOut, "qcow2").status(), line);
    }
}
