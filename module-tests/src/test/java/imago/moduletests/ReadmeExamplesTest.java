package imago.moduletests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Extent;
import imago.api.Image;
import imago.probe.Imago;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's library example, compiled and run: whatever is between the {@code README:begin} and
 * {@code README:end} markers is what the README shows (with {@code out} being {@code System.out}).
 */
class ReadmeExamplesTest {
    @TempDir
    Path dir;

    @Test
    void createWriteReadAndMap() throws IOException {
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(captured, true, StandardCharsets.UTF_8);

        // README:begin
        Path disk = dir.resolve("disk.raw");
        Imago.create(disk, "raw", CreateOptions.ofSize(64L << 20));          // 64 MiB, sparse

        try (Image image = Imago.opener().path(disk).format("raw").writable(true).open()) {
            ByteBuffer hello = ByteBuffer.wrap("hello, imago".getBytes(StandardCharsets.UTF_8));
            image.write(hello, 1 << 20);                                      // at 1 MiB

            ByteBuffer back = ByteBuffer.allocate(12);
            image.read(back, 1 << 20);
            out.println(StandardCharsets.UTF_8.decode(back.flip()));          // hello, imago

            for (Extent e : image.extents(0, image.size())) {                 // like qemu-img map
                out.printf("%d+%d data=%b zero=%b%n", e.offset(), e.length(), e.data(), e.zero());
            }
        }
        // README:end

        System.out.print(captured.toString(StandardCharsets.UTF_8)); // for the README's sample output
        List<String> lines = captured.toString(StandardCharsets.UTF_8).lines().toList();
        assertEquals("hello, imago", lines.get(0));
        long covered = 0;
        boolean dataAtOneMiB = false;
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split("[+ =]");
            long offset = Long.parseLong(f[0]);
            long length = Long.parseLong(f[1]);
            assertEquals(covered, offset, "extents must be contiguous: " + lines);
            covered += length;
            dataAtOneMiB |= offset <= 1 << 20 && 1 << 20 < offset + length && f[3].equals("true");
        }
        assertEquals(64L << 20, covered, lines.toString());
        assertTrue(dataAtOneMiB, "the written bytes must be in a data extent: " + lines);

        byte[] file = Files.readAllBytes(dir.resolve("disk.raw"));
        assertEquals(64L << 20, file.length);
        byte[] expected = "hello, imago".getBytes(StandardCharsets.UTF_8);
        assertArrayEquals(expected, java.util.Arrays.copyOfRange(file, 1 << 20, (1 << 20) + expected.length));
        try (Image reopened = Imago.open(dir.resolve("disk.raw"))) {
            assertEquals("raw", reopened.format());
            assertEquals(64L << 20, reopened.size());
        }
    }
}
