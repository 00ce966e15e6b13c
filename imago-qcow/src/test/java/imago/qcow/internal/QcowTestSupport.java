package imago.qcow.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Extent;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuMap;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Helpers of the qcow tests: whole-image reads, qemu-io runs, and comparisons with qemu-img. */
final class QcowTestSupport {
    private QcowTestSupport() {
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

    static void qemuIo(Path dir, String format, String file, List<String> commands) {
        List<Object> cmd = new ArrayList<>(List.of(Qemu.io(), "-f", format));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(file);
        Qemu.ok(dir, cmd.toArray());
    }

    /** imago's extents of {@code image}, merged as qemu-img map merges them, one line each. */
    static List<String> imagoMap(Image image) throws IOException {
        List<Extent> out = new ArrayList<>();
        for (Extent e : image.extents(0, image.size())) {
            if (!out.isEmpty() && out.getLast().mergeableWith(e)) {
                out.set(out.size() - 1, out.getLast().merge(e));
            } else {
                out.add(e);
            }
        }
        return out.stream().map(e -> describe(new QemuMap.Entry(e.offset(), e.length(), e.depth(), e.present(),
                e.zero(), e.data(), e.hostOffset().orElse(-1)))).toList();
    }

    static String describe(QemuMap.Entry e) {
        return e.start() + "+" + e.length() + " d" + e.depth() + (e.present() ? " P" : " -") + (e.zero() ? "Z" : "-")
                + (e.data() ? "D" : "-") + (e.offset() >= 0 ? " @" + e.offset() : "");
    }

    /**
     * Asserts that imago reads {@code image} (as {@code format}) byte for byte as {@code qemu-img convert -O raw}
     * does and maps it as {@code qemu-img map} does.
     */
    static void assertReadsLikeQemu(Path dir, Path image, String format) throws IOException {
        Path raw = dir.resolve("expected.raw");
        Files.deleteIfExists(raw);
        Qemu.ok(dir, Qemu.img(), "convert", "-f", format, "-O", "raw", image, raw);
        byte[] expected = Files.readAllBytes(raw);
        try (Image img = Imago.opener().path(image).format(format).open()) {
            assertEquals(expected.length, img.size(), "size of " + image);
            byte[] actual = readAll(img);
            assertTrue(Arrays.equals(expected, actual), () -> "content of " + image + " differs at byte "
                    + Arrays.mismatch(expected, actual));
            List<String> qemu = Qemu.map(image, format).stream().map(QcowTestSupport::describe).toList();
            assertEquals(String.join("\n", qemu), String.join("\n", imagoMap(img)), "map of " + image);
        }
    }
}
