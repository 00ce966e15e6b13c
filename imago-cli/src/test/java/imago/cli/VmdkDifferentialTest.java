package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code imago} and qemu-img 7.2 print the same for VMDK images: {@code info} (format-specific data with the
 * extents: file names, formats, sizes, grain sizes, compression; the actual size of every file), {@code map}.
 * Skipped without qemu, failed under IMAGO_REQUIRE_QEMU=1.
 */
class VmdkDifferentialTest {
    @TempDir
    Path dir;

    private String qemu(Object... args) {
        Object[] cmd = new Object[args.length + 1];
        cmd[0] = Qemu.img();
        System.arraycopy(args, 0, cmd, 1, args.length);
        return Qemu.ok(dir, cmd);
    }

    private void qemuIo(Path image, String... commands) {
        Object[] cmd = new Object[2 * commands.length + 2];
        cmd[0] = Qemu.io();
        for (int i = 0; i < commands.length; i++) {
            cmd[1 + 2 * i] = "-c";
            cmd[2 + 2 * i] = commands[i];
        }
        cmd[cmd.length - 1] = image;
        Qemu.ok(dir, cmd);
    }

    private void assertSameInfoAndMap(Path image) {
        String x = image.toString();
        assertEquals(qemu("info", "--output=json", x), imago("info", "--output=json", x).ok().out(), "info json");
        assertEquals(qemu("info", x), imago("info", x).ok().out(), "info");
        assertEquals(qemu("info", "--backing-chain", "--output=json", x),
                imago("info", "--backing-chain", "--output=json", x).ok().out(), "info --backing-chain");
        assertEquals(qemu("map", "--output=json", x), imago("map", "--output=json", x).ok().out(), "map json");
        assertEquals(qemu("map", x), imago("map", x).ok().out(), "map");
    }

    @ParameterizedTest
    @ValueSource(strings = {"monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat",
        "streamOptimized"})
    void infoAndMapOfEverySubformat(String subformat) {
        Path image = dir.resolve(subformat + ".vmdk");
        String size = subformat.startsWith("twoGb") ? "2049M" : "3M";
        qemu("create", "-q", "-f", "vmdk", "-o", "subformat=" + subformat + ",adapter_type=lsilogic", image, size);
        if (subformat.equals("streamOptimized")) {
            qemuIo(image, "write -c -P 0x11 0 64k", "write -c -P 0x12 1M 64k");
        } else {
            qemuIo(image, "write -P 0x11 0 100k", "write -P 0x12 1M 1k");
        }
        if (subformat.equals("streamOptimized")) {
            // the human map has no room for compressed data: both refuse it alike
            assertEquals(qemu("info", "--output=json", image), imago("info", "--output=json", image.toString())
                    .ok().out());
            assertEquals(qemu("info", image), imago("info", image.toString()).ok().out());
            assertEquals(qemu("map", "--output=json", image), imago("map", "--output=json", image.toString())
                    .ok().out());
            return;
        }
        assertSameInfoAndMap(image);
    }

    @Test
    void deltaDiskChain() {
        Path base = dir.resolve("base.vmdk");
        qemu("create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", base, "4M");
        qemuIo(base, "write -P 1 0 1M", "write -z 64k 64k");
        Path child = dir.resolve("child.vmdk");
        qemu("create", "-q", "-f", "vmdk", "-o", "compat6=on", "-b", "base.vmdk", "-F", "vmdk", child);
        qemuIo(child, "write -P 2 512k 4k");
        assertSameInfoAndMap(child);
    }

    /** The "Formatting" line, and the same refusals (exit 1, one line) for what QEMU refuses. */
    @ParameterizedTest
    @ValueSource(strings = {"subformat=monolithicSparse", "subformat=twoGbMaxExtentFlat,adapter_type=lsilogic",
        "zeroed_grain=on,hwversion=7,toolsversion=12", "compat6=on", "subformat=streamOptimized,zeroed_grain=off",
        "subformat=monolithicFlat,preallocation=full", "compat6=on,hwversion=7", "subformat=monolithicflat",
        "adapter_type=scsi", "subformat=monolithicFlat,zeroed_grain=on", "preallocation=metadata"})
    void createPrintsAndRefusesAsQemu(String options) {
        Path q = dir.resolve("q.vmdk");
        Path i = dir.resolve("i.vmdk");
        Qemu.Output theirs = Qemu.run(dir, Qemu.img(), "create", "-f", "vmdk", "-o", options, q, "5G");
        Run.Result ours = imago("create", "-f", "vmdk", "-o", options, i.toString(), "5G");
        assertEquals(theirs.status(), ours.status(), theirs.err() + " / " + ours.err());
        if (theirs.status() == 0) {
            assertEquals(theirs.out().replace(q.toString(), i.toString()), ours.out());
        } else {
            ours.failsWithOneLine();
        }
    }

    /** A delta disk records its parent's CID and name; a flat one cannot have a parent. */
    @Test
    void createWithABackingFile() {
        Path base = dir.resolve("base.vmdk");
        qemu("create", "-q", "-f", "vmdk", base, "1G");
        Path child = dir.resolve("child.vmdk");
        String line = imago("create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", child.toString()).ok().out();
        assertEquals("Formatting '" + child + "', fmt=vmdk size=1073741824 backing_file=base.vmdk backing_fmt=vmdk "
                + "compat6=off hwversion=undefined\n", line);
        String info = qemu("info", "--output=json", child);
        String cid = qemu("info", "--output=json", base).replaceAll("(?s).*\"cid\": (\\d+).*", "$1");
        assertEquals(cid, info.replaceAll("(?s).*\"parent-cid\": (\\d+).*", "$1"));
        assertEquals(qemu("info", "--output=json", child), imago("info", "--output=json", child.toString())
                .ok().out());
        assertEquals("imago: " + dir.resolve("flat.vmdk") + ": Flat image can't have backing file",
                imago("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", "-b", "base.vmdk", "-F", "vmdk",
                        dir.resolve("flat.vmdk").toString()).failsWithOneLine());
    }

    /**
     * {@code convert -O vmdk -o subformat=streamOptimized}: one pass, grains compressed in parallel and appended in
     * order, the file qemu-img's byte for byte (CID aside); and back to raw, and to monolithicSparse, the same bytes.
     */
    @Test
    void convertToAndFromStreamOptimized() throws Exception {
        Path src = dir.resolve("src.raw");
        SplittableRandom r = new SplittableRandom(17);
        byte[] data = new byte[(9 << 20) + 3 * 512];
        for (int g = 0; g < data.length; g += 65536) {
            int kind = r.nextInt(3);
            for (int i = g; i < Math.min(data.length, g + 65536) && kind > 0; i++) {
                data[i] = kind == 1 ? (byte) r.nextInt() : (byte) (i >> 7);
            }
        }
        Files.write(src, data);
        // the same file name in two directories: the descriptor names the image's own file
        Path q = Files.createDirectory(dir.resolve("q")).resolve("s.vmdk");
        Path i = Files.createDirectory(dir.resolve("i")).resolve("s.vmdk");
        qemu("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, q);
        imago("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src.toString(), i.toString())
                .ok();
        assertEquals(withoutCid(q), withoutCid(i));
        qemu("check", i);
        Path back = dir.resolve("back.raw");
        imago("convert", "-O", "raw", q.toString(), back.toString()).ok();
        Assertions.assertArrayEquals(data, Files.readAllBytes(back));
        Path sparse = dir.resolve("sparse.vmdk");
        imago("convert", "-O", "vmdk", q.toString(), sparse.toString()).ok();
        qemu("check", sparse);
        assertEquals("Images are identical.\n", qemu("compare", src, sparse));
    }

    /**
     * qemu-io scripts on a streamOptimized image, through qemu-io and imago as qemu-io, in two sessions: grains in any
     * order, plain and {@code -c}, a grain written again (EIO and QEMU's message), parts of grains (EINVAL, after QEMU
     * took a grain's room), {@code write -z} (zeroed-grain entries or compressed zeroes), {@code discard} (nothing),
     * {@code writev} and {@code aio_write}; the same output, and the same file byte for byte (CID aside).
     */
    @ParameterizedTest
    @ValueSource(strings = {"subformat=streamOptimized", "subformat=streamOptimized,zeroed_grain=on"})
    void streamOptimizedScriptsLeaveQemuIosFile(String options) throws Exception {
        Path q = Files.createDirectory(dir.resolve("q")).resolve("s.vmdk");
        Path i = Files.createDirectory(dir.resolve("i")).resolve("s.vmdk");
        qemu("create", "-q", "-f", "vmdk", "-o", options, q, "4M");
        qemu("create", "-q", "-f", "vmdk", "-o", options, i, "4M");
        QemuIoDifferential.Image image = new QemuIoDifferential.Image(q, i, "vmdk");
        List<String> first = List.of("write -P 1 2M 64k", "write -c -P 2 0 64k", "write -P 3 1M 128k",
                "write -P 4 1M 64k", "write -P 5 3M+512 4k", "write -z 512k 64k", "write -z 640k 4k",
                "discard 2M 64k", "read -P 1 2M 64k", "write -P 6 4M-64k 64k", "write -c -P 7 3M+64k 4k",
                "write -P 8 1536k 192k");
        List<String> second = List.of("write -P 7 768k 64k", "write -P 8 2M 64k", "write -c -P 9 3M 64k",
                "write -z 512k 64k", "read -P 6 4M-64k 64k", "read -P 0 512k 64k", "write -P 10 256k 1k",
                "write -P 11 2560k 64k", "writev -P 12 2M 64k", "writev -P 12 3M+4k 4k", "writev -P 12 3328k 64k",
                "aio_write -P 13 0 64k", "aio_write -P 13 1280k 64k", "aio_write -P 13 1408k 512", "aio_flush");
        for (List<String> session : List.of(first, second)) {
            QemuIoDifferential.agree(dir, image, true, List.of("-f", "vmdk"), session, false);
        }
        // the descriptor (sectors 1 to 20) apart: its text up to the end, CID aside (each side draws its own; when
        // the new one has fewer digits, QEMU leaves the old text's last bytes after the end)
        byte[] a = Files.readAllBytes(q);
        byte[] b = Files.readAllBytes(i);
        assertEquals(descriptorText(a), descriptorText(b));
        Arrays.fill(a, 512, 21 * 512, (byte) 0);
        Arrays.fill(b, 512, 21 * 512, (byte) 0);
        Assertions.assertArrayEquals(a, b);
    }

    private static String descriptorText(byte[] file) {
        String text = new String(file, 512, 20 * 512, StandardCharsets.ISO_8859_1);
        int end = text.indexOf('\0');
        return text.substring(0, end < 0 ? text.length() : end).replaceFirst("\nCID=[0-9a-f]+\n", "\nCID\n");
    }

    /** The file's bytes as text, the CID line taken out (both tools pick it at random, with 7 or 8 digits). */
    private static String withoutCid(Path p) throws IOException {
        String s = new String(Files.readAllBytes(p), StandardCharsets.ISO_8859_1);
        Matcher m = Pattern.compile("\nCID=[0-9a-f]+\n").matcher(s);
        Assertions.assertTrue(m.find());
        // the descriptor's padding absorbs the difference in digits
        int pad = 8 - (m.end() - m.start() - 6);
        return s.substring(0, m.start()) + "\nCID=\n" + s.substring(m.end()).replaceFirst("\u0000{" + pad + "}", "");
    }

    /**
     * {@code check}: clean images, a grain and a flat extent past the end of their files (the first error ends the
     * check: "Check failed"), and repairs (QEMU's vmdk has none: exit 63), in both output forms.
     */
    @Test
    void checkAsQemu() throws Exception {
        Path sparse = dir.resolve("sparse.vmdk");
        qemu("create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", sparse, "4M");
        qemuIo(sparse, "write -P 1 0 200k", "write -z 1M 64k");
        Path flat = dir.resolve("flat.vmdk");
        qemu("create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentFlat", flat, "2049M");
        Path bad = dir.resolve("bad.vmdk");
        Files.copy(sparse, bad);
        try (FileChannel ch = FileChannel.open(bad, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer h = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(h, 0);
            long gd = h.getLong(56);
            ByteBuffer e = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(e, gd * 512);
            long gt = Integer.toUnsignedLong(e.getInt(0));
            ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(1 << 20).flip(),
                    gt * 512 + 4 * 3);
        }
        Path badFlat = dir.resolve("badflat.vmdk");
        Files.writeString(badFlat, "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\n"
                + "createType=\"monolithicFlat\"\nRW 8 FLAT \"flat-f002.vmdk\" 8\nRW 8 FLAT \"flat-f001.vmdk\" "
                + "4194304\n");
        for (Path image : List.of(sparse, flat, bad, badFlat)) {
            for (List<String> args : List.of(List.<String>of(), List.of("--output=json"), List.of("-r", "all"),
                    List.of("-r", "leaks"))) {
                List<Object> theirs = new ArrayList<>(List.of(Qemu.img(), "check"));
                theirs.addAll(args);
                theirs.add(image);
                Qemu.Output q = Qemu.run(dir, theirs.toArray());
                List<String> ours = new ArrayList<>(List.of("check"));
                ours.addAll(args);
                ours.add(image.toString());
                Run.Result i = imago(ours.toArray(String[]::new));
                String what = image.getFileName() + " " + args;
                assertEquals(q.status(), i.status(), what + ": " + q.err() + " / " + i.err());
                assertEquals(q.out(), i.out(), what);
                assertEquals(q.err().replace("qemu-img: ", "imago: "), i.err(), what);
            }
        }
    }

    /**
     * {@code commit} of a delta disk: its data goes into the parent and, as vmdk cannot empty a layer, stays in the
     * child too ("Image committed.", as qemu-img); {@code resize} is refused with qemu-img's message.
     */
    @Test
    void commitAndResizeAsQemu() {
        Path base = dir.resolve("b.vmdk");
        qemu("create", "-q", "-f", "vmdk", base, "4M");
        Path child = dir.resolve("c.vmdk");
        qemu("create", "-q", "-f", "vmdk", "-b", "b.vmdk", "-F", "vmdk", child);
        qemuIo(child, "write -P 0x5e 64k 64k");
        assertEquals("Image committed.\n", imago("commit", child.toString()).ok().out());
        Qemu.ok(dir, Qemu.io(), "-r", "-c", "read -P 0x5e 64k 64k", "-c", "read -P 0 0 64k", base);
        String map = qemu("map", "--output=json", child);
        assertEquals(map, imago("map", "--output=json", child.toString()).ok().out());
        Assertions.assertTrue(map.contains("\"start\": 65536, \"length\": 65536, \"depth\": 0"),
                map);
        Qemu.Output q = Qemu.run(dir, Qemu.img(), "resize", child, "8M");
        Run.Result i = imago("resize", child.toString(), "8M");
        assertEquals(q.status(), i.status());
        assertEquals(q.err().replace("qemu-img: ", "imago: "), i.err());
    }
}
