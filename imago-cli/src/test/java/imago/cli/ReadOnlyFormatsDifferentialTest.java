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

    /** A cloop image (version 2.0) of two 4 KiB blocks of zeroes. */
    private Path cloop() throws IOException {
        byte[] block = new byte[64];
        java.util.zip.Deflater deflater = new java.util.zip.Deflater();
        deflater.setInput(new byte[4096]);
        deflater.finish();
        int n = deflater.deflate(block);
        deflater.end();
        ByteBuffer b = ByteBuffer.allocate(136 + 3 * 8 + 2 * n);
        b.put(("#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n")
                .getBytes(StandardCharsets.US_ASCII));
        b.putInt(128, 4096).putInt(132, 2).putLong(136, 160).putLong(144, 160 + n).putLong(152, 160 + 2 * n);
        b.put(160, block, 0, n).put(160 + n, block, 0, n);
        return Files.write(dir.resolve("x.cloop"), b.array());
    }

    @ParameterizedTest
    @ValueSource(strings = {"bochs", "bochs --output=json", "cloop", "cloop --output=json"})
    void infoPrintsWhatQemuImgPrints(String line) throws IOException {
        String output = line.contains(" ") ? line.substring(line.indexOf(' ') + 1) : "";
        Path image = line.startsWith("bochs") ? bochs() : cloop();
        Qemu.Output theirs = output.isEmpty() ? Qemu.run(dir, Qemu.img(), "info", image)
                : Qemu.run(dir, Qemu.img(), "info", output, image);
        Run.Result ours = output.isEmpty() ? imago("info", image.toString())
                : imago("info", output, image.toString());
        assertEquals(0, theirs.status(), theirs.err());
        assertEquals(theirs.status(), ours.status(), ours.err());
        assertEquals(theirs.out(), ours.out());
    }

    /** A dmg is probed by its name, below any magic number: a qcow2 named *.dmg is qcow2, in both tools. */
    @ParameterizedTest
    @ValueSource(strings = {"qcow2", "vpc", "raw"})
    void aDmgNameLosesToAMagicNumber(String format) {
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", format, "x.dmg", "1M");
        Qemu.Output theirs = Qemu.run(dir, Qemu.img(), "info", "--output=json", dir.resolve("x.dmg"));
        Run.Result ours = imago("info", "--output=json", dir.resolve("x.dmg").toString());
        assertEquals(theirs.status(), ours.status(), theirs.err() + ours.err());
        assertEquals(theirs.out(), ours.out());
    }

    @ParameterizedTest
    @ValueSource(strings = {"bochs", "cloop", "dmg"})
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
