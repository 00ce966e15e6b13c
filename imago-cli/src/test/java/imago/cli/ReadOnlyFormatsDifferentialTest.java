package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The read-only formats through the command line, against qemu-img on the same files: {@code info} (human and JSON:
 * no dirty flag, as QEMU's drivers without block-driver info print none), and {@code create}, refused before the
 * "Formatting" line with qemu-img's words and status.
 */
class ReadOnlyFormatsDifferentialTest {
    @TempDir
    Path dir;

    /** A bochs image of 64 KiB in 4 KiB extents, nothing written. */
    private Path bochs() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(512 + 16 * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, "Bochs Virtual HD Image".getBytes(StandardCharsets.US_ASCII));
        b.put(32, "Redolog".getBytes(StandardCharsets.US_ASCII));
        b.put(48, "Growing".getBytes(StandardCharsets.US_ASCII));
        b.putInt(64, 0x0002_0000).putInt(68, 512).putInt(72, 16).putInt(76, 1).putInt(80, 4096).putLong(88, 65536);
        for (int i = 0; i < 16; i++) {
            b.putInt(512 + 4 * i, -1);
        }
        return Files.write(dir.resolve("x.bochs"), b.array());
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "--output=json"})
    void infoPrintsWhatQemuImgPrints(String output) throws IOException {
        Path image = bochs();
        Qemu.Output theirs = output.isEmpty() ? Qemu.run(dir, Qemu.img(), "info", image)
                : Qemu.run(dir, Qemu.img(), "info", output, image);
        Run.Result ours = output.isEmpty() ? imago("info", image.toString())
                : imago("info", output, image.toString());
        assertEquals(0, theirs.status(), theirs.err());
        assertEquals(theirs.status(), ours.status(), ours.err());
        assertEquals(theirs.out(), ours.out());
    }

    @ParameterizedTest
    @ValueSource(strings = {"bochs"})
    void createIsRefusedAsQemuImgRefusesIt(String format) {
        Qemu.Output theirs = Qemu.run(dir, Qemu.img(), "create", "-f", format, dir.resolve("q." + format), "1M");
        Run.Result ours = imago("create", "-f", format, dir.resolve("i." + format).toString(), "1M");
        assertEquals(theirs.status(), ours.status());
        assertEquals(theirs.out(), ours.out());
        assertEquals(theirs.err().replace("qemu-img: ", "").replace("q." + format, "i." + format),
                ours.err().replace("imago: ", ""));
        assertEquals(false, Files.exists(dir.resolve("i." + format)));
    }

    @Test
    void aWritableOpenIsRefused() throws IOException {
        Path image = bochs();
        Qemu.Output theirs = Qemu.run(dir, Qemu.io(), "-c", "write 0 512", image);
        Run.Result ours = imago("io", "-c", "write 0 512", image.toString());
        assertEquals(1, theirs.status(), theirs.out() + theirs.err());
        assertEquals(theirs.status(), ours.status(), ours.out() + ours.err());
    }
}
