package imago.vhdx.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Extent;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Helpers of the vhdx tests: whole-image reads, qemu-img runs, and map comparisons. */
final class VhdxTestSupport {
    private static final Pattern OBJECT = Pattern.compile("\\{([^}]*)\\}");

    private VhdxTestSupport() {
    }

    static byte[] readAll(Image image) throws IOException {
        byte[] all = new byte[Math.toIntExact(image.size())];
        int chunk = 1 << 20;
        for (long pos = 0; pos < all.length; pos += chunk) {
            int n = (int) Math.min(chunk, all.length - pos);
            image.read(ByteBuffer.wrap(all, (int) pos, n), pos);
        }
        return all;
    }

    static void qemuIo(Path dir, String file, List<String> commands) {
        List<Object> cmd = new ArrayList<>(List.of("qemu-io", "-f", "vhdx"));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(file);
        Qemu.ok(dir, cmd.toArray());
    }

    /** imago's extents of {@code image}, adjacent mergeable ones merged, one line each. */
    static List<String> imagoMap(Image image) throws IOException {
        List<Extent> out = new ArrayList<>();
        for (Extent e : image.extents(0, image.size())) {
            if (!out.isEmpty() && out.getLast().mergeableWith(e)) {
                out.set(out.size() - 1, out.getLast().merge(e));
            } else {
                out.add(e);
            }
        }
        return out.stream().map(e -> describe(e.offset(), e.length(), e.depth(), e.present(), e.zero(), e.data(),
                e.hostOffset().orElse(-1))).toList();
    }

    /** {@code qemu-img map --output=json -f vhdx} of {@code image}, one line per entry. */
    static List<String> qemuMap(Path dir, Path image) {
        String json = Qemu.ok(dir, "qemu-img", "map", "-f", "vhdx", "--output=json", image);
        List<String> out = new ArrayList<>();
        Matcher m = OBJECT.matcher(json);
        while (m.find()) {
            String o = m.group(1);
            out.add(describe(num(o, "start"), num(o, "length"), (int) num(o, "depth"), bool(o, "present"),
                    bool(o, "zero"), bool(o, "data"), o.contains("\"offset\"") ? num(o, "offset") : -1));
        }
        return out;
    }

    static String describe(long start, long length, int depth, boolean present, boolean zero, boolean data,
            long off) {
        return start + "+" + length + " d" + depth + (present ? " P" : " -") + (zero ? "Z" : "-") + (data ? "D" : "-")
                + (off >= 0 ? " @" + off : "");
    }

    private static long num(String o, String key) {
        Matcher m = Pattern.compile("\"" + key + "\":\\s*(\\d+)").matcher(o);
        if (!m.find()) {
            throw new AssertionError("no " + key + " in " + o);
        }
        return Long.parseLong(m.group(1));
    }

    private static boolean bool(String o, String key) {
        Matcher m = Pattern.compile("\"" + key + "\":\\s*(true|false)").matcher(o);
        if (!m.find()) {
            throw new AssertionError("no " + key + " in " + o);
        }
        return m.group(1).equals("true");
    }

    /** The virtual size qemu-img info reports for {@code image} read as vhdx. */
    static long qemuSize(Path dir, Path image) {
        String json = Qemu.ok(dir, "qemu-img", "info", "-f", "vhdx", "--output=json", image);
        Matcher m = Pattern.compile("\"virtual-size\":\\s*(\\d+)").matcher(json);
        assertTrue(m.find(), json);
        return Long.parseLong(m.group(1));
    }

    /**
     * Asserts that imago reads {@code image} (as vhdx) byte for byte as {@code qemu-img convert -O raw} does and
     * maps it as {@code qemu-img map} does.
     */
    static void assertReadsLikeQemu(Path dir, Path image) throws IOException {
        Path raw = dir.resolve("expected.raw");
        Files.deleteIfExists(raw);
        Qemu.ok(dir, "qemu-img", "convert", "-f", "vhdx", "-O", "raw", image, raw);
        byte[] expected = Files.readAllBytes(raw);
        try (Image img = Imago.opener().path(image).format("vhdx").open()) {
            assertEquals(qemuSize(dir, image), img.size(), "virtual size of " + image);
            assertEquals(expected.length, img.size(), "size");
            byte[] actual = readAll(img);
            assertTrue(Arrays.equals(expected, actual), () -> "content of " + image + " differs at byte "
                    + Arrays.mismatch(expected, actual));
            assertEquals(String.join("\n", qemuMap(dir, image)), String.join("\n", imagoMap(img)), "map of " + image);
        }
    }
}
