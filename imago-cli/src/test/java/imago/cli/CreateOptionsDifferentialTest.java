package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code create -o help}, the file options ({@code nocow}, {@code extent_size_hint}), {@code create -u}, {@code
 * compare -s} and {@code commit -r} against qemu-img 7.2: the same output, messages (program name aside), exit status
 * and images.
 */
class CreateOptionsDifferentialTest {
    @TempDir
    static Path dir;

    private static CliDifferential both;

    /** c1.qcow2 (1 MiB, a cluster of zero data) and c2.qcow2 (2 MiB, empty); base.qcow2 and top.qcow2 above it. */
    @BeforeAll
    static void images() {
        Path img = Qemu.img();
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "c1.qcow2", "1M");
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 0 0 64k", "c1.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "c2.qcow2", "2M");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "base.qcow2", "2M");
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 1 0 2M", "base.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2", "2M");
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 2 64k 1M", "top.qcow2");
        both = new CliDifferential(dir);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"-f qcow2 -o help; raw", "-o help; raw", "-f qcow2 -o help OUT; raw",
        "-f qcow2 -o help OUT 1M; raw", "-f vmdk -o ? OUT; raw", "-f vpc -o help; raw", "-f raw -o help OUT; raw",
        "-f foo -o help; raw", "-f dmg -o help; raw", "-f qed -o help OUT; raw", "-f qcow -o help; raw", "-f qcow2 -o cluster_size=4k,help OUT; raw", "-f qcow2 -o help,size=1M OUT; raw",
        "-f qcow2 -o nocow=on,extent_size_hint=1M OUT 1M; qcow2", "-f raw -o extent_size_hint=1k,nocow=off OUT 1M; raw",
        "-f vpc -o nocow=on OUT 1M; vpc", "-f qcow2 -o nocow=x OUT 1M; raw", "-f qcow2 -o extent_size_hint=x OUT 1M; raw",
        "-f raw -o extent_size_hint=5G OUT 1M; raw", "-f qcow2 -u -b nope.qcow2 -F qcow2 OUT 1M; raw",
        "-f qcow2 -u -b nope.qcow2 -F qcow2 OUT; raw", "-f qcow2 -b nope.qcow2 -F qcow2 OUT 1M; raw",
        "-u -f qcow2 OUT 1M; qcow2", "-f qcow2; raw", "''; raw"})
    void createsAsQemuImg(String line, String format) throws Exception {
        both.agree("create", line, format);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"-s c1.qcow2 c2.qcow2", "c1.qcow2 c2.qcow2", "-s base.qcow2 base.qcow2",
        "-s -q c1.qcow2 c2.qcow2", "-U -s base.qcow2 top.qcow2", "-s top.qcow2 base.qcow2"})
    void comparesAsQemuImg(String line) throws Exception {
        both.agree("compare", line, "raw");
    }

    @Test
    void commitTakesARateLimitAsQemuImg() throws Exception {
        for (String rate : new String[] {"x", "-1", "1M"}) {
            Path q = copyChain("q");
            Path i = copyChain("i");
            Qemu.Output theirs = Qemu.run(dir, Qemu.img(), "commit", "-r", rate, q);
            Run.Result ours = Run.imago("commit", "-r", rate, i.toString());
            assertEquals(theirs.status(), ours.status(), rate);
            assertEquals(theirs.out(), ours.out(), rate);
            assertEquals(theirs.err().replace("qemu-img: ", ""), ours.err().replace("imago: ", ""), rate);
            assertEquals(0, Qemu.compare(dir.resolve("q-base.qcow2"), "qcow2", dir.resolve("i-base.qcow2"), "qcow2")
                    .status(), rate);
        }
    }

    /** A copy of top.qcow2 over a copy of base.qcow2, named after {@code tool}; returns the top. */
    private static Path copyChain(String tool) throws Exception {
        Files.copy(dir.resolve("base.qcow2"), dir.resolve(tool + "-base.qcow2"), StandardCopyOption.REPLACE_EXISTING);
        Path top = Files.copy(dir.resolve("top.qcow2"), dir.resolve(tool + "-top.qcow2"),
                StandardCopyOption.REPLACE_EXISTING);
        Qemu.ok(dir, Qemu.img(), "rebase", "-u", "-b", tool + "-base.qcow2", "-F", "qcow2", top);
        return top;
    }
}
