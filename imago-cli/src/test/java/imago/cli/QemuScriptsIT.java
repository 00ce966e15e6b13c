package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The drop-in promise at the shell: bash scripts written for qemu-img and qemu-io run once with the real tools and
 * once with {@code qemu-img} and {@code qemu-io} symlinks to the {@code ./imago} launcher first on {@code PATH}, and
 * print the same (timings masked), exit with the same status and leave images {@code qemu-img compare} finds
 * identical.
 */
class QemuScriptsIT {
    /** The timing part of qemu-io's statistics line. */
    private static final Pattern TIMING = Pattern.compile("(?m)^(.*, \\d+ ops; ).*$");

    @TempDir
    Path dir;
    private Path symlinks;

    @BeforeEach
    void symlinks() throws IOException {
        Qemu.require();
        Path launcher = Launcher.find();
        symlinks = Files.createDirectories(dir.resolve("bin"));
        Files.createSymbolicLink(symlinks.resolve("qemu-img"), launcher);
        Files.createSymbolicLink(symlinks.resolve("qemu-io"), launcher);
    }

    @Test
    void aBackingChainWrittenCommittedRebasedAndConverted() throws Exception {
        sameWithBoth("""
                set -e
                qemu-img create -f qcow2 base.qcow2 64M
                qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x22 4M 512k' base.qcow2
                qemu-img create -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
                qemu-io --cache writeback --aio threads -c 'write -P 0x33 1M 1M' mid.qcow2
                qemu-img create -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
                qemu-io -c 'write -P 0x44 512k 1M' -c 'read -P 0x44 512k 1M' -c 'read -P 0x22 4M 512k' top.qcow2
                qemu-img info --output=json --backing-chain top.qcow2
                qemu-img commit top.qcow2
                qemu-img map --output=json mid.qcow2
                qemu-img rebase -b base.qcow2 -F qcow2 mid.qcow2
                qemu-img info --output=json mid.qcow2
                qemu-io -r -c 'read -P 0x44 512k 1M' -c 'read -P 0x33 1536k 512k' mid.qcow2
                qemu-img check mid.qcow2
                qemu-img convert -O qcow2 mid.qcow2 flat.qcow2
                qemu-img compare mid.qcow2 flat.qcow2
                qemu-img measure -O qcow2 flat.qcow2
                qemu-img amend -f qcow2 -o compat=0.10 flat.qcow2
                qemu-img check --output=json flat.qcow2
                qemu-img map --output=json flat.qcow2
                """, "base.qcow2", "mid.qcow2", "top.qcow2", "flat.qcow2");
    }

    @Test
    void qemuIoSessionsOnStandardInput() throws Exception {
        sameWithBoth("""
                qemu-img create -f raw disk.img 4M
                qemu-io -f raw disk.img <<'END'
                write -P 0xab 0 64k
                read -P 0xab 0 64k
                readv -P 0xab 0 32k 32k
                aio_write -P 0xcd 1M 4k
                aio_flush
                read -P 0xee 1M 4k
                info
                map
                END
                echo "status $?"
                qemu-io -c 'open -o driver=raw,file.filename=disk.img' -c 'read -P 0xcd 1M 4k' -c close -c length
                echo "status $?"
                printf 'open -r -o driver=raw disk.img\\nwrite 0 512\\nalloc 0 2M\\n' | qemu-io
                echo "status $?"
                qemu-img convert -f raw -O qcow2 -c disk.img disk.qcow2
                qemu-io -c 'write -c 2M 64k' -c 'write -z 3M 64k' -c 'discard 0 64k' disk.qcow2
                qemu-img map --output=json disk.qcow2
                qemu-img check disk.qcow2
                qemu-img convert -O vmdk disk.qcow2 disk.vmdk
                qemu-img compare disk.qcow2 disk.vmdk
                echo "status $?"
                """, "disk.img", "disk.qcow2", "disk.vmdk");
    }

    @Test
    void bitmapsAddedWrittenMeasuredAndConverted() throws Exception {
        sameWithBoth("""
                set -e
                qemu-img create -f qcow2 src.qcow2 16M
                qemu-img bitmap --add src.qcow2 b0
                qemu-io -c 'write -P 7 0 128k' src.qcow2
                qemu-img bitmap --add -g 128k src.qcow2 b1
                # actual-size left out: imago's file of the same clusters has fewer holes than QEMU's after the
                # bitmap is stored (same map, same contents)
                qemu-img info --output=json src.qcow2 | grep -v '"actual-size"'
                qemu-img measure --output=json -O qcow2 src.qcow2
                # README: "copying a source that has bitmaps is refused for now", so no --bitmaps here
                qemu-img convert -O qcow2 src.qcow2 dst.qcow2
                qemu-img info dst.qcow2
                qemu-img convert -O raw nosuch.qcow2 out.raw || echo "status $?"
                """, "src.qcow2", "dst.qcow2");
    }

    @Test
    void signalsEndTheProcessAsTheyEndQemuIo() throws Exception {
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "s.qcow2", "1M");
        for (String command : List.of("sigraise 9", "sigraise 15", "sigraise 10", "sigraise 13", "abort")) {
            Qemu.Output real = Qemu.run(dir, Qemu.io(), "-c", "write -P 1 0 4k", "-c", command, "-c", "length",
                    "s.qcow2");
            Qemu.Output imago = Qemu.run(dir, symlinks.resolve("qemu-io"), "-c", "write -P 1 0 4k", "-c", command,
                    "-c", "length", "s.qcow2");
            assertEquals(real.status(), imago.status(), command);
            if (!command.equals("abort")) { // abort(3) loses what qemu-io's stdio buffered; imago's is out already
                assertEquals(TIMING.matcher(real.out()).replaceAll("$1"), TIMING.matcher(imago.out()).replaceAll("$1"),
                        command);
            }
        }
    }

    /**
     * Runs {@code script} with the real tools and with the symlinks, each in a directory of its own, and asserts the
     * same output, status and {@code images}.
     */
    private void sameWithBoth(String script, String... images) throws Exception {
        Run real = run(script, "real", System.getenv("PATH"));
        Run imago = run(script, "imago", symlinks + ":" + System.getenv("PATH"));
        assertEquals(real.status(), imago.status(), () -> "exit status\n" + real.err() + "\n" + imago.err());
        assertEquals(TIMING.matcher(real.out()).replaceAll("$1"), TIMING.matcher(imago.out()).replaceAll("$1"));
        assertEquals(real.err(), imago.err());
        for (String image : images) {
            Path theirs = dir.resolve("real").resolve(image);
            Path ours = dir.resolve("imago").resolve(image);
            Qemu.Output compared = Qemu.run(dir, Qemu.img(), "compare", theirs, ours);
            assertEquals(0, compared.status(), () -> image + ": " + compared.out() + compared.err());
        }
    }

    private record Run(int status, String out, String err) {
    }

    private Run run(String script, String where, String path) throws Exception {
        Path work = Files.createDirectories(dir.resolve(where));
        Path out = dir.resolve(where + ".out");
        Path err = dir.resolve(where + ".err");
        ProcessBuilder pb = new ProcessBuilder(List.of("bash", "-c", script)).directory(work.toFile())
                .redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().put("PATH", path);
        Process p = pb.start();
        p.getOutputStream().close();
        if (!p.waitFor(2, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + where);
        }
        return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                Files.readString(err, StandardCharsets.UTF_8));
    }
}
