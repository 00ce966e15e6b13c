package imago.vmdk.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What imago creates and writes, read by an implementation that is neither imago nor QEMU: libvmdk (Debian's
 * {@code libvmdk-utils} for {@code vmdkinfo}, and {@code python3-libvmdk} for its data). The disk type, size, CIDs
 * and extents {@code vmdkinfo} prints, and every byte libvmdk reads, must be what imago says. Skipped without
 * them, failed under {@code IMAGO_REQUIRE_QEMU=1}.
 */
class VmdkIndependentReaderTest {
    private static final Path VMDKINFO = Path.of("/usr/bin/vmdkinfo");
    private static final Path PYTHON = Path.of("/usr/bin/python3");

    @TempDir
    Path dir;

    private static void require(boolean present, String what) {
        Qemu.requireInstalled(present, what + " is not installed");
    }

    @ParameterizedTest
    @ValueSource(strings = {"monolithicSparse", "monolithicSparse,zeroed_grain=on", "monolithicFlat",
        "streamOptimized", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"})
    void libvmdkReadsWhatImagoWrites(String subformat) throws Exception {
        require(Files.isExecutable(VMDKINFO), "vmdkinfo (libvmdk-utils)");
        boolean split = subformat.startsWith("twoGb");
        long size = split ? 2049L << 20 : (6L << 20) + 512;
        String[] o = subformat.split(",");
        CreateOptions.Builder b = CreateOptions.builder().size(size).option("subformat", o[0]);
        for (int k = 1; k < o.length; k++) {
            b.option(o[k].substring(0, o[k].indexOf('=')), o[k].substring(o[k].indexOf('=') + 1));
        }
        Path image = dir.resolve("x.vmdk");
        Imago.create(image, "vmdk", b.build());
        long cid;
        try (Image i = Imago.opener().path(image).writable(true).open()) {
            byte[] grain = new byte[64 << 10];
            for (int k = 0; k < grain.length; k++) {
                grain[k] = (byte) (k * 7 + (k >> 9));
            }
            if (subformat.equals("streamOptimized")) {
                // out of guest order, as QEMU takes them: the last grain (ending at the image's end) first
                i.write(ByteBuffer.wrap(grain, 0, 512), size - 512);
                i.writeCompressed(ByteBuffer.wrap(grain), 3L << 20);
                i.writeCompressed(ByteBuffer.wrap(grain), 0);
            } else {
                i.write(ByteBuffer.wrap(grain, 0, 5000), 1000);
                i.write(ByteBuffer.wrap(grain), 3L << 20);
                if (!subformat.contains("zeroed_grain")) {
                    // libvmdk 20200926 reads a zeroed-grain entry (1) as sector 1, for QEMU's images too
                    i.writeZeroes(4L << 20, 128 << 10);
                }
                if (split) {
                    i.write(ByteBuffer.wrap(grain), (2L << 30) - 4096);
                }
            }
            i.flush();
            cid = ((Number) i.info().formatSpecific().get("cid")).longValue();
        }
        String info = Qemu.ok(dir, VMDKINFO, image);
        String type = switch (o[0]) {
            case "monolithicSparse" -> "Monolithic sparse";
            case "monolithicFlat" -> "Monolithic flat";
            case "streamOptimized" -> "Stream optimized";
            case "twoGbMaxExtentSparse" -> "2GB extent sparse";
            default -> "2GB extent flat";
        };
        assertEquals(type, field(info, "Disk type"));
        assertTrue(field(info, "Media size").endsWith("(" + size + " bytes)"), info);
        assertEquals(String.format("0x%08x", cid), field(info, "Content identifier"));
        assertEquals("0xffffffff", field(info, "Parent content identifier"));
        List<String> extents = Pattern.compile("Filename:\\s*(\\S+)").matcher(info).results().map(r -> r.group(1))
                .toList();
        List<String> expected = switch (o[0]) {
            case "monolithicFlat" -> List.of("x-flat.vmdk");
            case "twoGbMaxExtentSparse" -> List.of("x-s001.vmdk", "x-s002.vmdk");
            case "twoGbMaxExtentFlat" -> List.of("x-f001.vmdk", "x-f002.vmdk");
            default -> List.of("x.vmdk");
        };
        assertEquals(expected, extents, info);
        if (!split) {
            require(Files.isExecutable(PYTHON) && Qemu.run(dir, PYTHON, "-c", "import pyvmdk").status() == 0,
                    "python3-libvmdk");
            assertEquals(imagoDigest(image), libvmdkDigest(image), "sha-256 of every guest byte");
        }
    }

    private static String field(String info, String name) {
        Matcher m = Pattern.compile("(?m)^\\s*" + Pattern.quote(name) + ":\\s*(.*?)\\s*$").matcher(info);
        assertTrue(m.find(), name + " in\n" + info);
        return m.group(1);
    }

    private static String imagoDigest(Path image) throws IOException, NoSuchAlgorithmException {
        MessageDigest d = MessageDigest.getInstance("SHA-256");
        try (Image i = Imago.open(image)) {
            ByteBuffer b = ByteBuffer.allocate(1 << 20);
            for (long pos = 0; pos < i.size(); pos += b.capacity()) {
                b.clear().limit((int) Math.min(b.capacity(), i.size() - pos));
                i.read(b, pos);
                d.update(b.flip());
            }
        }
        return HexFormat.of().formatHex(d.digest());
    }

    private String libvmdkDigest(Path image) {
        String script = "import hashlib, pyvmdk, sys\n"
                + "h = pyvmdk.handle(); h.open(sys.argv[1]); h.open_extent_data_files()\n"
                + "n = h.get_media_size(); d = hashlib.sha256(); pos = 0\n"
                + "while pos < n:\n"
                + "    b = h.read_buffer_at_offset(min(1 << 20, n - pos), pos); d.update(b); pos += len(b)\n"
                + "print(d.hexdigest())\n";
        return Qemu.ok(dir, PYTHON, "-c", script, image).strip();
    }
}
