package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code imago dd} against {@code qemu-img dd} on the same command lines: output, messages (program name aside),
 * exit status, and the images made (contents, map, check).
 */
class DdDifferentialTest {
    @TempDir
    static Path dir;

    private static CliDifferential both;

    /** in.raw: 1 MiB with 100 KiB of data at 0; in.qcow2: 1 MiB with data at 4 KiB and a zero cluster. */
    @BeforeAll
    static void sources() {
        Path img = Qemu.img();
        Path io = Qemu.io();
        Qemu.ok(dir, img, "create", "-q", "-f", "raw", "in.raw", "1M");
        Qemu.ok(dir, io, "-f", "raw", "-c", "write -P 7 0 100k", "in.raw");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "in.qcow2", "1M");
        Qemu.ok(dir, io, "-c", "write -P 5 4k 200k", "-c", "write -z 512k 64k", "in.qcow2");
        both = new CliDifferential(dir);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
        "if=in.raw of=OUT; raw", "bs=4k if=in.raw of=OUT; raw", "bs=1000 count=3 if=in.raw of=OUT; raw",
        "bs=64k skip=2 count=4 if=in.raw of=OUT; raw", "bs=1k skip=1024 if=in.raw of=OUT; raw",
        "bs=64k skip=100 if=in.raw of=OUT; raw", "bs=512 skip=99999999999999999 if=in.raw of=OUT; raw",
        "count=0 if=in.raw of=OUT; raw", "bs=1M count=1G if=in.raw of=OUT; raw",
        "-O qcow2 bs=64k skip=1 if=in.qcow2 of=OUT; qcow2", "-U -f qcow2 -O vmdk bs=3k skip=1 if=in.qcow2 of=OUT; vmdk",
        "-Uf raw -Oqcow2 bs=1.5k count=100 of=OUT if=in.raw; qcow2", "if=in.qcow2 -f qcow2 of=OUT --force-share; raw",
        "if=in.raw if=in.qcow2 of=OUT bs=128k; raw"})
    void copiesAsQemuImg(String line, String format) throws Exception {
        both.agree("dd", line, format);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"bs=0 if=in.raw of=OUT", "bs=-1 if=in.raw of=OUT", "bs=2G if=in.raw of=OUT",
        "bs=4k count=-1 if=in.raw of=OUT", "count=1x if=in.raw of=OUT", "skip=x if=in.raw of=OUT",
        "skip=99999999999999999999 if=in.raw of=OUT", "bs= if=in.raw of=OUT", "foo if=in.raw of=OUT",
        "foo=1 if=in.raw of=OUT", "-x if=in.raw of=OUT", "--bogus if=in.raw of=OUT", "-f if=in.raw of=OUT",
        "-O", "if=in.raw", "of=OUT", "''", "-O foo if=in.raw of=OUT", "-O bochs if=in.raw of=OUT", "-f qcow2 if=in.raw of=OUT",
        "if=nope of=OUT", "if=in.raw of=/nonexistent/x", "-O foo if=nope of=OUT", "bs=1x -x"})
    void refusesAsQemuImg(String line) throws Exception {
        both.agree("dd", line, "raw");
    }

    @Test
    void osizeSetsTheOutputSize() throws Exception {
        // imago's own operand: the copy is the same, the output larger (or cut short) as asked
        assertEquals(0, Run.imago("dd", "-O", "qcow2", "bs=64k", "skip=1", "osize=10M", "if=" + dir.resolve("in.qcow2"),
                "of=" + dir.resolve("big.qcow2")).ok().status());
        Qemu.ok(dir, Qemu.img(), "dd", "-O", "qcow2", "bs=64k", "skip=1", "if=in.qcow2", "of=ref.qcow2");
        Qemu.ok(dir, Qemu.img(), "resize", "-q", "ref.qcow2", "10M");
        assertEquals(0, Qemu.compare(dir.resolve("ref.qcow2"), "qcow2", dir.resolve("big.qcow2"), "qcow2").status());
        assertEquals(0, Qemu.check(dir.resolve("big.qcow2"), "qcow2").status());
        Run.imago("dd", "bs=4k", "osize=6k", "if=" + dir.resolve("in.raw"), "of=" + dir.resolve("small.raw")).ok();
        Qemu.ok(dir, Qemu.img(), "dd", "bs=1k", "count=6", "if=in.raw", "of=small-ref.raw");
        assertEquals(0, Qemu.compare(dir.resolve("small-ref.raw"), "raw", dir.resolve("small.raw"), "raw").status());
        String bad = Run.imago("dd", "osize=1x", "if=" + dir.resolve("in.raw"), "of=" + dir.resolve("x.raw")).err();
        assertEquals("imago: Invalid osize specified. You may use k, M, G, T, P or E suffixes for\n"
                + "imago: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.\n", bad);
    }
}
