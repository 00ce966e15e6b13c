package imago.vmdk.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Extent;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** qemu-img as the reference: its map, its raw conversion, compared with what imago reads. */
final class VmdkQemu {
    private static final Pattern OBJECT = Pattern.compile("\\{([^}]*)\\}");

    private VmdkQemu() {
    }

    /** One {@code qemu-img map --output=json} entry; {@code offset} is -1 when absent. */
    record Entry(long start, long length, int depth, boolean present, boolean zero, boolean data, long offset) {
    }

    /** Runs qemu-img (or qemu-io) in {@code dir}, asserting success; returns standard output. */
    static String img(Path dir, Object... args) {
        Object[] cmd = new Object[args.length + 1];
        cmd[0] = Qemu.img();
        System.arraycopy(args, 0, cmd, 1, args.length);
        return Qemu.ok(dir, cmd);
    }

    /** Runs qemu-io commands on {@code image}. */
    static void io(Path dir, Path image, String... commands) {
        List<Object> cmd = new ArrayList<>();
        cmd.add(Qemu.io());
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image);
        Qemu.ok(dir, cmd.toArray());
    }

    static List<Entry> qemuMap(Path dir, Path image) {
        List<Entry> out = new ArrayList<>();
        Matcher m = OBJECT.matcher(img(dir, "map", "--output=json", image));
        while (m.find()) {
            String o = m.group(1);
            out.add(new Entry(num(o, "start"), num(o, "length"), (int) num(o, "depth"), bool(o, "present"),
                    bool(o, "zero"), bool(o, "data"), o.contains("\"offset\"") ? num(o, "offset") : -1));
        }
        return out;
    }

    /** imago's map of the whole image, merged as qemu-img map merges. */
    static List<Entry> imagoMap(Image image) throws IOException {
        List<Extent> merged = new ArrayList<>();
        for (Extent e : image.extents(0, image.size())) {
            if (!merged.isEmpty() && merged.getLast().mergeableWith(e)) {
                merged.set(merged.size() - 1, merged.getLast().merge(e));
            } else {
                merged.add(e);
            }
        }
        List<Entry> out = new ArrayList<>();
        for (Extent e : merged) {
            out.add(new Entry(e.offset(), e.length(), e.depth(), e.present(), e.zero(), e.data(),
                    e.hostOffset().orElse(-1)));
        }
        return out;
    }

    /**
     * imago reads {@code image} (probed, read-only, with its chain) exactly as {@code qemu-img convert -O raw} does,
     * and maps it as {@code qemu-img map --output=json} does. Only what qemu's map calls data is compared byte by
     * byte; everything else must be zero for both (imago's map says so, and a read of it is checked).
     */
    static void assertReadsAsQemu(Path dir, Path image) throws IOException {
        Path raw = dir.resolve("qemu-" + image.getFileName() + ".raw");
        img(dir, "convert", "-O", "raw", image, raw);
        List<Entry> theirs = qemuMap(dir, image);
        try (Image ours = Imago.opener().path(image).open();
                FileChannel ch = FileChannel.open(raw, StandardOpenOption.READ)) {
            assertEquals(theirs, imagoMap(ours), "map of " + image);
            for (Entry e : theirs) {
                compare(ours, ch, e.start(), e.length(), !e.zero());
            }
        }
    }

    /** Compares {@code [start, start + length)} in chunks; when not data, only its first and last chunks. */
    private static void compare(Image ours, FileChannel raw, long start, long length, boolean all)
            throws IOException {
        int chunk = 1 << 20;
        long end = start + length;
        List<Long> starts = new ArrayList<>();
        if (all) {
            for (long pos = start; pos < end; pos += chunk) {
                starts.add(pos);
            }
        } else {
            starts.add(start);
            starts.add(Math.max(start, end - chunk));
        }
        for (long pos : starts) {
            int n = (int) Math.min(chunk, end - pos);
            ByteBuffer a = ByteBuffer.allocate(n);
            ours.read(a, pos);
            ByteBuffer b = ByteBuffer.allocate(n);
            while (b.hasRemaining() && raw.read(b, pos + b.position()) > 0) {
                // keep reading
            }
            int mismatch = a.flip().mismatch(b.flip());
            assertTrue(mismatch < 0, () -> "bytes differ from qemu-img's at guest offset " + (pos + mismatch));
        }
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
}
