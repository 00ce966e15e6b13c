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
        "-u -f qcow2 OUT 1M; qcow2", "-f qcow2; raw", "''; raw",
        // a number option as qemu's parser reads it: hex and octal (the Formatting line prints it in decimal)
        "-f qcow2 -o refcount_bits=0x10 OUT 1M; qcow2", "-f qcow2 -o refcount_bits=010 OUT 1M; qcow2"})
    void createsAsQemuImg(String line, String format) throws Exception {
        both.agree("create", line, format);
    }

    /** Every format's {@code -o help}, with and without a file name. */
    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"-f vdi -o help; raw", "-f vdi -o help OUT; raw", "-f vhdx -o help; raw",
        "-f vhdx -o help OUT; raw", "-f parallels -o help; raw", "-f parallels -o help OUT; raw",
        "-f luks -o help; raw", "-f luks -o help OUT; raw"})
    void listsEveryFormatsOptionsAsQemuImg(String line, String format) throws Exception {
        both.agree("create", line, format);
    }

    /**
     * qemu's option parser on {@code -o}: unknown names and values that do not read as their type (size, number,
     * on/off) are refused before the "Formatting" line, in the order given.
     */
    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"-f vdi -o bad=1 OUT 1M; raw",
        "-f qcow2 -o bad=1 OUT 1M; raw", "-f raw -o cluster_size=4k OUT 1M; raw", "-f vpc -o cluster_size=bad OUT 1M; raw",
        "-f qed -o cluster_size=bad OUT 1M; raw", "-f parallels -o cluster_size=99999999999999999999 OUT 1M; raw",
        "-f qcow2 -o refcount_bits=abc OUT 1M; raw", "-f qcow2 -o refcount_bits=99999999999999999999 OUT 1M; raw",
        "-f vhdx -o block_state_zero=maybe OUT 1M; raw", "-f qcow -o nocow=2 OUT 1M; raw",
        "-f vmdk -o bad=1,size=x OUT; raw", "-f vmdk -o size=x,bad=1 OUT; raw",
        "-f vmdk -o subformat=bogus OUT 1M; raw", "-f vmdk -o adapter_type=bogus OUT 1M; raw",
        "-f qed -o cluster_size=4k,table_size=2 OUT 1M; qed", "-f qed -o cluster_size=3k OUT 1M; raw",
        "-f vdi -o static=yes OUT 1M; vdi"})
    void checksOptionsAsQemuImg(String line, String format) throws Exception {
        both.agree("create", line, format);
    }

    /**
     * A preallocation mode is read by the driver, after the "Formatting" line: qcow2's parser's words, or the file
     * layer's; formats that do not preallocate (vpc, vhdx, qed, qcow) pass {@code falloc} and {@code full} to the
     * file, which the format then writes anew, and refuse {@code metadata} as the file does.
     */
    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"-f qcow2 -o preallocation=bad OUT 1M; raw",
        "-f vmdk -o preallocation=bad OUT 1M; raw", "-f raw -o preallocation=metadata OUT 1M; raw",
        "-f vdi -o preallocation=metadata OUT 1M; raw", "-f parallels -o preallocation=metadata OUT 1M; raw",
        "-f qed -o preallocation=metadata OUT 1M; raw", "-f qcow -o preallocation=metadata OUT 1M; raw",
        "-f vpc -o preallocation=metadata OUT 1M; raw", "-f vhdx -o preallocation=metadata OUT 1M; raw",
        "-f qed -o preallocation=full OUT 1M; qed", "-f qcow -o preallocation=falloc OUT 1M; qcow",
        "-f vpc -o preallocation=full OUT 1M; vpc", "-f vhdx -o preallocation=falloc OUT 1M; vhdx"})
    void readsPreallocationAsQemuImg(String line, String format) throws Exception {
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
