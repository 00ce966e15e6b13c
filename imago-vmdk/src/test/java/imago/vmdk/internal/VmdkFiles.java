package imago.vmdk.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.Image;
import imago.api.ZeroFlag;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** Test helpers: the files of an image compared with qemu's, and qemu-io's write commands run through imago. */
final class VmdkFiles {
    private VmdkFiles() {
    }

    /**
     * The file's bytes with the descriptor's CID digits replaced by {@code X} (both QEMU's and imago's are random) and
     * a descriptor file cut at its first NUL (QEMU pads a descriptor file it rewrites to a whole sector, with stale
     * bytes of the old text after the NUL when the new CID is shorter).
     */
    static byte[] normalized(Path file) throws IOException {
        byte[] b = Files.readAllBytes(file);
        String latin = new String(b, StandardCharsets.ISO_8859_1);
        if (latin.startsWith("# Disk DescriptorFile")) {
            int nul = latin.indexOf('\u0000');
            return (nul < 0 ? latin : latin.substring(0, nul)).replaceFirst("\nCID=[0-9a-fA-F]+\n", "\nCID=X\n")
                    .getBytes(StandardCharsets.ISO_8859_1);
        }
        Matcher m = Pattern.compile("\nCID=([0-9a-fA-F]+)\n").matcher(latin);
        if (!m.find()) {
            return b;
        }
        // an embedded descriptor: the text shifts by the difference in digits; keep the NUL padding after it in step
        int width = m.end(1) - m.start(1);
        String text = latin.substring(0, m.start(1)) + "X" + "\u0000".repeat(width - 1) + latin.substring(m.end(1));
        int textEnd = text.indexOf('\u0000', m.start(1) + width);
        String moved = text.substring(0, m.start(1) + 1) + text.substring(m.start(1) + width, textEnd)
                + text.substring(m.start(1) + 1, m.start(1) + width) + text.substring(textEnd);
        return moved.getBytes(StandardCharsets.ISO_8859_1);
    }

    /**
     * Every file in {@code ours} equals the same-named file in {@code theirs} (normalized), and no file is missing;
     * files larger than {@code maxCompared} (flat extents) only have the same size.
     */
    static void assertSameFiles(Path theirs, Path ours, long maxCompared) throws IOException {
        List<String> a = names(theirs);
        assertEquals(a, names(ours), "files");
        for (String name : a) {
            Path q = theirs.resolve(name);
            Path i = ours.resolve(name);
            if (Files.size(q) <= maxCompared) {
                assertArrayEquals(normalized(q), normalized(i), name);
            } else {
                assertEquals(Files.size(q), Files.size(i), name + " size");
            }
        }
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /** A size or offset as qemu-io takes it: bytes, or with a k/M/G suffix. */
    static long size(String s) {
        char unit = Character.toLowerCase(s.charAt(s.length() - 1));
        long n = Character.isDigit(unit) ? Long.parseLong(s) : Long.parseLong(s.substring(0, s.length() - 1));
        return switch (unit) {
            case 'k' -> n << 10;
            case 'm' -> n << 20;
            case 'g' -> n << 30;
            default -> n;
        };
    }

    /** Runs qemu-io's {@code write -P pattern off len}, {@code write -z off len} and {@code write -c ...} on imago. */
    static void run(Image image, String... commands) throws IOException {
        for (String c : commands) {
            List<String> w = new ArrayList<>(Arrays.asList(c.trim().split("\\s+")));
            if (!w.removeFirst().equals("write")) {
                throw new IllegalArgumentException(c);
            }
            boolean zero = w.remove("-z");
            boolean compressed = w.remove("-c");
            byte pattern = (byte) 0xcd;
            int p = w.indexOf("-P");
            if (p >= 0) {
                pattern = (byte) Integer.decode(w.get(p + 1)).intValue();
                w.remove(p + 1);
                w.remove(p);
            }
            long offset = size(w.get(0));
            long length = size(w.get(1));
            if (zero) {
                image.writeZeroes(offset, length, EnumSet.noneOf(ZeroFlag.class));
                continue;
            }
            byte[] b = new byte[(int) length];
            Arrays.fill(b, pattern);
            if (compressed) {
                image.writeCompressed(ByteBuffer.wrap(b), offset);
            } else {
                image.write(ByteBuffer.wrap(b), offset);
            }
        }
    }

}
