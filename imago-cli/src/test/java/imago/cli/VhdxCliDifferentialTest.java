package imago.cli;

import static imago.cli.FormatCliDifferential.convertAsQemuImg;
import static imago.cli.FormatCliDifferential.randomRaw;
import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The vhdx format through the command, against qemu-img on the same files: {@code convert -O vhdx} writes the file
 * qemu-img writes (but for the GUIDs, sequence numbers and creator string in the identifier, the headers, the log
 * and the page 83 data), {@code info}, {@code map} and {@code check} print what qemu-img prints, and a log left to
 * replay is refused by {@code check} and replayed by {@code check -r all} as qemu-img does it.
 */
class VhdxCliDifferentialTest {
    @TempDir
    Path dir;

    /** The file with what differs by nature zeroed: creator, headers, log, page 83 data. */
    private static byte[] masked(Path file) throws IOException {
        byte[] b = Files.readAllBytes(file);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        long logLength = bb.getInt(0x10000 + 68) & 0xFFFF_FFFFL;
        long metadata = bb.getLong(0x30000 + 16 + 32 + 16);
        Arrays.fill(b, 8, 520, (byte) 0);
        Arrays.fill(b, 0x10000, 0x30000, (byte) 0);
        Arrays.fill(b, 1 << 20, (int) ((1 << 20) + logLength), (byte) 0);
        Arrays.fill(b, (int) metadata + 65536 + 16, (int) metadata + 65536 + 32, (byte) 0);
        return b;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"subformat=dynamic", "subformat=dynamic,block_size=1M", "subformat=fixed",
        "subformat=fixed,block_state_zero=off,block_size=2M,log_size=2M"})
    void convertWritesWhatQemuImgWrites(String options) throws IOException {
        Path qemuImg = Qemu.img();
        Path src = randomRaw(dir, (21L << 20) + 3 * 512, 12);
        Path ours = convertAsQemuImg(dir, src, "vhdx", "vhdx", options, VhdxCliDifferentialTest::masked,
                "the files differ beyond GUIDs, headers and log").ours();
        assertEquals(0, Qemu.run(dir, qemuImg, "check", "-f", "vhdx", ours).status());
        Qemu.Output vhdi = Qemu.run(dir, "vhdiinfo", ours);
        assertEquals(0, vhdi.status(), vhdi.out() + vhdi.err());

        assertEquals(Qemu.ok(dir, qemuImg, "info", "--output=json", ours),
                imago("info", "--output=json", ours.toString()).ok().out());
        assertEquals(Qemu.ok(dir, qemuImg, "info", ours), imago("info", ours.toString()).ok().out());
        assertEquals(Qemu.ok(dir, qemuImg, "map", "--output=json", ours),
                imago("map", "--output=json", ours.toString()).ok().out());
        assertEquals(Qemu.ok(dir, qemuImg, "check", ours), imago("check", ours.toString()).ok().out());

        Path back = dir.resolve("back.raw");
        imago("convert", "-f", "vhdx", "-O", "raw", ours.toString(), back.toString()).ok();
        Qemu.Output same = Qemu.run(dir, qemuImg, "compare", "-f", "raw", "-F", "raw", src, back);
        assertEquals(0, same.status(), same.out() + same.err());
    }

    @Test
    void createPrintsWhatQemuImgPrints() throws IOException {
        Path qemuImg = Qemu.img();
        Path ours = dir.resolve("ours.vhdx");
        Path theirs = dir.resolve("theirs.vhdx");
        for (String[] o : new String[][] {{}, {"-o", "subformat=fixed,block_size=1M"}}) {
            String[] args = new String[o.length + 5];
            args[0] = "create";
            args[1] = "-f";
            args[2] = "vhdx";
            System.arraycopy(o, 0, args, 3, o.length);
            args[o.length + 3] = ours.toString();
            args[o.length + 4] = "24M";
            String line = imago(args).ok().out();
            Object[] q = new Object[args.length + 1];
            q[0] = qemuImg;
            System.arraycopy(args, 0, q, 1, args.length);
            q[q.length - 2] = theirs;
            assertEquals(Qemu.ok(dir, q).replace(theirs.toString(), ours.toString()), line);
            assertArrayEquals(masked(theirs), masked(ours));
        }
    }

    /**
     * Blocks past the end of a truncated file: the same messages (with the program's name before them, as QEMU's open
     * prints them), counts and exit status as qemu-img check.
     */
    @Test
    void checkReportsATruncatedImageAsQemuImgDoes() throws IOException {
        Path qemuImg = Qemu.img();
        Path theirs = dir.resolve("theirs.vhdx");
        Path ours = dir.resolve("ours.vhdx");
        Qemu.ok(dir, qemuImg, "create", "-q", "-f", "vhdx", "-o", "subformat=fixed,block_state_zero=off", theirs,
                "300M");
        try (RandomAccessFile raf = new RandomAccessFile(theirs.toFile(), "rw")) {
            raf.setLength(300L << 20);
        }
        Files.copy(theirs, ours);
        Qemu.Output q = Qemu.run(dir, qemuImg, "check", theirs);
        Run.Result i = imago("check", ours.toString());
        assertEquals(2, q.status(), q.out() + q.err());
        assertEquals(q.status(), i.status(), q.err() + i.err());
        assertEquals(q.out(), i.out());
        // QEMU prints these through error_report, with its program name
        assertEquals(q.err().replace("qemu-img: ", "imago: "), i.err());
    }

    /** qemu-io's log entry, made pending again: check refuses it, check -r all replays it, as qemu-img does. */
    @Test
    void checkRepairAllReplaysALogAsQemuImgDoes() throws IOException {
        Path qemuImg = Qemu.img();
        Path ours = dir.resolve("ours.vhdx");
        Qemu.ok(dir, qemuImg, "create", "-q", "-f", "vhdx", "-o", "block_size=1M", ours, "8M");
        byte[] before = Files.readAllBytes(ours);
        Qemu.run(dir, Qemu.io(), "-f", "vhdx", "-c", "write -P 0x5a 0 64k", "-c", "abort", ours);
        byte[] b = Files.readAllBytes(ours);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        System.arraycopy(before, 2 << 20, b, 2 << 20, 4096); // the BAT as before the write
        int header = Long.compareUnsigned(bb.getLong(0x10008), bb.getLong(0x20008)) > 0 ? 0x10000 : 0x20000;
        System.arraycopy(b, (1 << 20) + 32, b, header + 48, 16); // the header names the entry's log
        bb.putInt(header + 4, 0);
        CRC32C crc = new CRC32C();
        crc.update(b, header, 4096);
        bb.putInt(header + 4, (int) crc.getValue());
        Files.write(ours, b);
        Path theirs = Files.write(dir.resolve("theirs.vhdx"), b);

        Qemu.Output q = Qemu.run(dir, qemuImg, "check", theirs);
        Run.Result i = imago("check", ours.toString());
        assertEquals(q.status(), i.status(), q.err() + i.err());
        assertTrue(i.err().contains("contains a log that needs to be replayed"), i.err());
        q = Qemu.run(dir, qemuImg, "check", "-r", "all", theirs);
        i = imago("check", "-r", "all", ours.toString());
        assertEquals(q.status(), i.status(), q.err() + i.err());
        assertEquals(q.out(), i.out());
        assertEquals(0, Qemu.run(dir, qemuImg, "compare", "-f", "vhdx", "-F", "vhdx", theirs, ours).status());
    }
}
