package imago.vpc.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.ImageInfo;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The virtual size follows QEMU 7.2 for footers written by every creator application: the geometry for
 * Virtual PC and qemu's "qemu", the current size for Hyper-V, disk2vhd, XenServer, XenConverter and qemu's
 * "qem2", the current size whenever the geometry is the largest, and {@code force_size_calc} overriding it. The
 * footers are rewritten by the test, and qemu-img info is asked about each.
 */
class VpcSizeTest {
    static final List<String> CREATORS = List.of("vpc ", "qemu", "qem2", "win ", "d2v ", "CTXS", "tap\0", "tap ",
            "wa\0\0", "vs  ", "\0\0\0\0");

    /**
     * @param creator the creator application
     * @param maxGeometry whether the footer carries the largest geometry
     * @param currentSize the footer's current size
     * @param fixed a fixed disk rather than a dynamic one
     */
    record Case(String creator, boolean maxGeometry, long currentSize, boolean fixed) {
        @Override
        public String toString() {
            return "'" + creator.replace("\0", "\\0") + "' " + (maxGeometry ? "max CHS" : "CHS") + " current "
                    + currentSize + (fixed ? " fixed" : " dynamic");
        }
    }

    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        for (String c : CREATORS) {
            out.add(new Case(c, false, (9L << 20) + 777, c.hashCode() % 2 == 0));
            out.add(new Case(c, true, (7L << 20) + 512, c.hashCode() % 2 != 0));
        }
        out.add(new Case("win ", false, (10L << 20) - 1, false)); // rounded down to a sector, as QEMU does
        return out.stream();
    }

    /** Rewrites the creator, the geometry and the current size of every footer of {@code image}. */
    static void rewriteFooters(Path image, Case c) throws IOException {
        byte[] b = Files.readAllBytes(image);
        List<Integer> at = c.fixed() ? List.of(b.length - 512) : List.of(0, b.length - 512);
        for (int p : at) {
            ByteBuffer f = ByteBuffer.wrap(b, p, 512).slice();
            f.put(28, c.creator().getBytes(StandardCharsets.ISO_8859_1));
            f.putLong(48, c.currentSize());
            if (c.maxGeometry()) {
                f.putShort(56, (short) 65535).put(58, (byte) 16).put(59, (byte) 255);
            }
            f.putInt(64, VpcFields.checksum(f, 0, 512, 64));
        }
        Files.write(image, b);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void virtualSizeIsQemus(Case c, @TempDir Path dir) throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "-o", c.fixed() ? "subformat=fixed" : "subformat=dynamic",
                "img.vhd", 12L << 20);
        Path img = dir.resolve("img.vhd");
        rewriteFooters(img, c);
        long qemu = QemuReads.qemuSize(dir, img, "vpc");
        try (Image image = Imago.opener().path(img).format("vpc").open()) {
            assertEquals(qemu, image.size());
            ImageInfo info = image.info();
            assertEquals(c.fixed() ? OptionalInt.empty() : OptionalInt.of(2 << 20),
                    info.clusterSize(), "qemu-img shows the block size as cluster_size for dynamic disks only");
            assertTrue(info.formatSpecific().isEmpty(), "qemu-img shows no format-specific data for vpc");
        }
        for (String calc : List.of("chs", "current_size")) {
            String json = Qemu.ok(dir, "qemu-img", "info", "--output=json", "--image-opts",
                    "driver=vpc,force_size_calc=" + calc + ",file.filename=" + img);
            Matcher m = Pattern.compile("\"virtual-size\":\\s*(\\d+)").matcher(json);
            assertTrue(m.find(), json);
            try (Image image = Imago.opener().path(img).format("vpc").option("force_size_calc", calc).open()) {
                assertEquals(Long.parseLong(m.group(1)), image.size(), "force_size_calc=" + calc);
            }
        }
    }

    @Test
    void anUnknownSizeCalculationIsRefusedAsQemuRefusesIt(@TempDir Path dir) throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "img.vhd", 1 << 20);
        var e = assertThrows(IllegalArgumentException.class, () -> Imago.opener().path(dir.resolve("img.vhd"))
                .format("vpc").option("force_size_calc", "bogus").open());
        assertEquals("Invalid size calculation mode: 'bogus'", e.getMessage());
    }
}
