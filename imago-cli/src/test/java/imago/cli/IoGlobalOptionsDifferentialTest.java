package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * qemu-io's global options (cache, AIO and discard modes, {@code -s}, {@code -C}, and the ones that only tune
 * QEMU's own I/O), which harnesses pass to every call: the same command lines through qemu-io and imago as
 * {@code qemu-io} on copies of one backing chain give the same output (timings aside), messages, exit status, and
 * leave images with the same contents and allocation ({@link QemuIoDifferential}).
 */
class IoGlobalOptionsDifferentialTest {
    @TempDir
    Path dir;

    static Stream<Arguments> commandLines() {
        String reads = "read -P 1 0 512|read 1M 512|read 3M 512|read 2M 70k|read -P 2 2M 4k";
        return Stream.of(
                Arguments.of("--cache writeback --aio threads", "write -P 7 64k 4k|read -P 7 64k 4k"),
                Arguments.of("--cache=none --aio=native", "write -P 7 64k 4k|read -P 7 64k 4k"),
                Arguments.of("-n -k", "write -z 0 64k|read -P 0 0 64k"),
                Arguments.of("-t writethrough -i io_uring", "write -P 5 3M 8k|discard 3M 64k"),
                Arguments.of("-t directsync", "write -P 5 100k 1k"),
                Arguments.of("-t unsafe -m -T foo*", "write -P 4 1M 64k|flush"),
                Arguments.of("-d ignore", "write -P 6 0 128k|discard 0 128k|read -P 6 0 128k"),
                Arguments.of("-d off", "discard 2M 64k"),
                Arguments.of("-d unmap", "write -P 6 0 128k|discard 0 64k"),
                Arguments.of("-C", reads),
                Arguments.of("--copy-on-read -t none", reads + "|write -P 8 3M 512"),
                Arguments.of("-s", "write -P 9 0 64k|read -P 9 0 64k|discard 2M 64k"),
                Arguments.of("--snapshot -C", reads),
                Arguments.of("-r -s", "write -P 9 0 64k|read -P 1 0 4k"),
                Arguments.of("-i native", "read 0 512"),
                Arguments.of("-t bogus", "read 0 512"),
                Arguments.of("--aio=bogus", "read 0 512"),
                Arguments.of("-d bogus", "read 0 512"));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("commandLines")
    void actsAsQemuIo(String options, String script) throws Exception {
        Path qemuImg = Qemu.img();
        Path qemuIo = Qemu.io();
        Path base = dir.resolve("base.qcow2");
        Qemu.ok(dir, qemuImg, "create", "-q", "-f", "qcow2", base, "4M");
        Qemu.ok(dir, qemuIo, "-c", "write -P 1 0 4k", "-c", "write -z 1M 64k", "-c", "write -P 2 2M 128k", base);
        Path theirs = dir.resolve("theirs.qcow2");
        Path ours = dir.resolve("ours.qcow2");
        for (Path top : List.of(theirs, ours)) {
            Qemu.ok(dir, qemuImg, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top);
        }
        QemuIoDifferential.agree(dir, new QemuIoDifferential.Image(theirs, ours, "qcow2"), true,
                List.of(options.split(" ")), List.of(script.split("\\|")), false);
        try (Stream<Path> left = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
            assertEquals(List.of(), left.filter(p -> p.getFileName().toString().startsWith("imago-io-snapshot-"))
                    .toList(), "-s leaves no overlay behind");
        }
    }
}
