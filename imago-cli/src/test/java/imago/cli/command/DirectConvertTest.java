package imago.cli.command;

import static imago.cli.command.BothWays.CLI;
import static imago.cli.command.BothWays.session;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import imago.api.Image;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine.Option;

/**
 * {@link DirectConvert} against picocli: every convert command line it takes gives the same output, messages, exit
 * status and target as picocli's parse of it, it leaves every other one to picocli, and it knows exactly
 * {@link ConvertCommand}'s options.
 */
class DirectConvertTest {

    /** What one run printed and returned, and the targets it left ({@link #guestContents}; {@code null}: none). */
    private record Result(BothWays.Printed printed, String dst, String existing) {
        int status() {
            return printed.status();
        }
    }

    @Test
    void takesThePlainFormsAndAgreesWithPicocli(@TempDir Path dir) throws IOException {
        String base = dir.resolve("base.qcow2").toString();
        String src = dir.resolve("src.qcow2").toString();
        String raw = dir.resolve("src.raw").toString();
        assertEquals(0, run(CLI, null, null, "create", "-f", "qcow2", base, "4M").status());
        assertEquals(0, run(CLI, null, null, "io", "-c", "write -P 0xab 64k 128k", "-c", "write -z 1M 64k", base)
                .status());
        assertEquals(0, run(CLI, null, null, "create", "-f", "qcow2", "-b", base, "-F", "qcow2", src).status());
        assertEquals(0, run(CLI, null, null, "io", "-c", "write -P 0x11 2M 4k", src).status());
        assertEquals(0, run(CLI, null, null, "convert", "-O", "raw", src, raw).status());
        String dst = dir.resolve("dst").toString();
        String existing = dir.resolve("existing.raw").toString();
        String missing = dir.resolve("missing.qcow2").toString();
        List<String[]> taken = List.of(
                new String[] {"convert", src, dst},
                new String[] {"convert", "-O", "raw", src, dst},
                new String[] {"convert", "-f", "qcow2", "-O", "raw", "-t", "unsafe", src, dst},
                new String[] {"convert", src, "-O", "qcow2", dst, "-o", "cluster_size=4k", "-o", "compat=0.10"},
                new String[] {"convert", "-O", "qcow2", "-O", "raw", src, dst},
                new String[] {"convert", "-c", "-O", "qcow2", src, dst},
                new String[] {"convert", "-S", "0", "-W", "-m", "8", src, dst},
                new String[] {"convert", "-S", "64k", "-T", "none", "-r", "1G", src, dst},
                new String[] {"convert", "-C", "-q", "-p", "-U", src, dst},
                new String[] {"convert", "--force-share", "-m", "0x3", "-O", "raw", raw, src, dst},
                new String[] {"convert", "-O", "qcow2", "-B", base, "-F", "qcow2", src, dst},
                new String[] {"convert", "-f", "raw", "-O", "qcow2", "--bitmaps", raw, dst},
                new String[] {"convert", "-n", "--target-is-zero", "-O", "raw", raw, existing},
                new String[] {"convert", "-n", "--target-image-opts", raw, "driver=raw,file.filename=" + existing},
                new String[] {"convert", "--salvage", "-O", "raw", src, dst},
                new String[] {"convert", "-l", "nosuch", src, dst},
                new String[] {"convert", "-s", "nosuch", src, dst},
                new String[] {"convert", "-S", "4k", "-C", src, dst},
                new String[] {"convert", "-c", "-C", src, dst},
                new String[] {"convert", "-m", "17", src, dst},
                new String[] {"convert", "-S", "1000", src, dst},
                new String[] {"convert", "-t", "bogus", src, dst},
                new String[] {"convert", "-T", "bogus", src, dst},
                new String[] {"convert", "-O", "bogus", src, dst},
                new String[] {"convert", "-o", "bogus=1", src, dst},
                new String[] {"convert", "-O", "qcow2", "-o", "help", src, dst},
                new String[] {"convert", "--target-is-zero", src, dst},
                new String[] {"convert", "--skip-broken-bitmaps", src, dst},
                new String[] {"convert", "-n", "-o", "compat=1.1", src, existing},
                new String[] {"convert", "-f", "raw", src, dst},
                new String[] {"convert", missing, dst},
                new String[] {"convert", src, dir.resolve("no/such/dir/x").toString()});
        for (String[] args : taken) {
            BothWays.assertAgree(DirectConvert::parse, args, runner -> {
                Files.write(Path.of(existing), new byte[4 << 20]);
                Files.deleteIfExists(Path.of(dst));
                return run(runner, dst, existing, args);
            });
        }
    }

    @Test
    void leavesEverythingElseToPicocli() {
        String[][] others = {
            {"convert"}, {"convert", "a"}, {"convert", "-O", "raw", "a"}, {"info", "a", "b"},
            {"--debug", "convert", "a", "b"}, {"convert", "-Oraw", "a", "b"}, {"convert", "-O=raw", "a", "b"},
            {"convert", "--help"}, {"convert", "-h", "a", "b"}, {"convert", "-V", "a", "b"},
            {"convert", "--object", "secret,id=s,data=p", "a", "b"}, {"convert", "--image-opts", "a", "b"},
            {"convert", "--debug", "a", "b"}, {"convert", "--gate", "deny", "a", "b"}, {"convert", "--", "a", "b"},
            {"convert", "-qp", "a", "b"}, {"convert", "-c", "-c", "a", "b"},
            {"convert", "-U", "--force-share", "a", "b"}, {"convert", "-O", "-f", "a", "b"},
            {"convert", "a", "b", "-O"}, {"convert", "", "a", "b"},
            {"convert", "-", "a", "b"}, {"convert", "--salvage=true", "a", "b"}, {"convert", "-x", "a", "b"},
            {"convert", "-m", "-1", "a", "b"}, {"convert", "-o", "", "a", "b"},
        };
        for (String[] args : others) {
            assertNull(DirectConvert.parse(session(), args), String.join(" ", args));
        }
    }

    @Test
    void knowsExactlyTheOptionsOfTheCommand() {
        Map<String, Boolean> declared = new HashMap<>();
        for (var field : ConvertCommand.class.getDeclaredFields()) {
            Option option = field.getAnnotation(Option.class);
            if (option != null) {
                for (String name : option.names()) {
                    declared.put(name, field.getType() != boolean.class);
                }
            }
        }
        assertEquals(declared, DirectConvert.OPTIONS);
        ConvertCommand command = new ConvertCommand(session());
        for (String name : declared.keySet()) {
            assertDoesNotThrow(() -> command.option(name, "x"), name);
        }
    }

    private static Result run(BothWays.Runner runner, String dst, String existing, String... args)
            throws IOException {
        return new Result(BothWays.run(runner, args), guestContents(dst), guestContents(existing));
    }

    /** The image's format and a digest of its guest contents (a compressed target's layout may vary between runs). */
    private static String guestContents(String name) throws IOException {
        if (name == null || !Files.exists(Path.of(name))) {
            return null;
        }
        try (Image image = Imago.opener().path(Path.of(name)).open()) {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
            for (long offset = 0; offset < image.size(); offset += buffer.capacity()) {
                buffer.clear().limit((int) Math.min(buffer.capacity(), image.size() - offset));
                image.read(buffer, offset);
                digest.update(buffer.flip());
            }
            return image.format() + " " + image.size() + " " + HexFormat.of().formatHex(digest.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
