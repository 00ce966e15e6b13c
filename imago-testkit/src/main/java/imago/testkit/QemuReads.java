package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Extent;
import imago.api.Image;
import imago.api.StorageLocation;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Differential helpers for a format's own tests: whether imago reads a file as qemu-img does (content equal to
 * {@code qemu-img convert -O raw}, {@code map --output=json} entry for entry), and qemu-io runs.
 */
public final class QemuReads {
    private QemuReads() {
    }

    /** Runs qemu-io on {@code file} (in {@code dir}) as {@code format} with {@code commands}, failing on an error. */
    public static void qemuIo(Path dir, String format, String file, List<String> commands) {
        List<Object> cmd = new ArrayList<>(List.of("qemu-io", "-f", format));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(file);
        Qemu.ok(dir, cmd.toArray());
    }

    /** The whole guest content of {@code image}. */
    public static byte[] readAll(Image image) throws IOException {
        byte[] all = new byte[Math.toIntExact(image.size())];
        int chunk = 1 << 20;
        for (long pos = 0; pos < all.length; pos += chunk) {
            int n = (int) Math.min(chunk, all.length - pos);
            image.read(ByteBuffer.wrap(all, (int) pos, n), pos);
        }
        return all;
    }

    /** imago's extents of {@code image}, mergeable neighbours merged, as qemu-img map merges them. */
    public static List<Extent> mergedExtents(Image image) throws IOException {
        List<Extent> out = new ArrayList<>();
        for (Extent e : image.extents(0, image.size())) {
            if (!out.isEmpty() && out.getLast().mergeableWith(e)) {
                out.set(out.size() - 1, out.getLast().merge(e));
            } else {
                out.add(e);
            }
        }
        return out;
    }

    /** imago's extents of {@code image}, mergeable neighbours merged, one line each as {@link #qemuMap} gives them. */
    public static List<String> imagoMap(Image image) throws IOException {
        return mergedExtents(image).stream().map(e -> line(e.offset(), e.length(), e.depth(), e.present(), e.zero(),
                e.data(), e.hostOffset().orElse(-1))).toList();
    }

    /**
     * {@code qemu-img map --output=json} of {@code image} as {@code format}, one line per entry (without the entry of
     * length 0 that qemu-img prints for an empty image).
     */
    public static List<String> qemuMap(Path dir, Path image, String format) {
        String json = Qemu.ok(dir, "qemu-img", "map", "-f", format, "--output=json", image);
        return QemuMap.parse(json).stream().filter(e -> e.length() > 0).map(e -> line(e.start(), e.length(), e.depth(), e.present(), e.zero(),
                e.data(), e.offset())).toList();
    }

    private static String line(long start, long length, int depth, boolean present, boolean zero, boolean data,
            long off) {
        return start + "+" + length + " d" + depth + (present ? " P" : " -") + (zero ? "Z" : "-") + (data ? "D" : "-")
                + (off >= 0 ? " @" + off : "");
    }

    /** The virtual size {@code qemu-img info} reports for {@code image} as {@code format}. */
    public static long qemuSize(Path dir, Path image, String format) {
        String json = Qemu.ok(dir, "qemu-img", "info", "-f", format, "--output=json", image);
        Matcher m = Pattern.compile("\"virtual-size\":\\s*(\\d+)").matcher(json);
        assertTrue(m.find(), json);
        return Long.parseLong(m.group(1));
    }

    /**
     * Asserts that imago reads {@code image} as {@code format} byte for byte as {@code qemu-img convert -O raw} does,
     * with qemu-img's virtual size, and maps it as {@code qemu-img map} does.
     */
    public static void assertReadsLikeQemu(Path dir, Path image, String format) throws IOException {
        Path raw = dir.resolve("expected.raw");
        Files.deleteIfExists(raw);
        Qemu.ok(dir, "qemu-img", "convert", "-f", format, "-O", "raw", image, raw);
        byte[] expected = Files.readAllBytes(raw);
        try (Image img = ProbeApi.open(StorageLocation.file(image), format, false)) {
            assertEquals(qemuSize(dir, image, format), img.size(), "virtual size of " + image);
            byte[] actual = readAll(img);
            assertTrue(Arrays.equals(expected, actual), () -> "content of " + image + " differs at byte "
                    + Arrays.mismatch(expected, actual));
            assertEquals(String.join("\n", qemuMap(dir, image, format)), String.join("\n", imagoMap(img)),
                    "map of " + image);
        }
    }
}
