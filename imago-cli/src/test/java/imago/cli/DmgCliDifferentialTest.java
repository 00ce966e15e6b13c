package imago.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.DmgImages;
import imago.testkit.DmgImages.Plan;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * dmg through the command, against qemu-img on the same files: what each subcommand prints and returns for a dmg of
 * zlib, raw, zero and ignored chunks (map: the whole image as data, as QEMU's driver reports no block status), for
 * the commands that open it read-write (refused as QEMU's driver refuses them), and for truncated and damaged files.
 */
class DmgCliDifferentialTest {
    private static final Pattern OUTPUT_FORMAT = Pattern.compile("-O (\\w+)");

    @TempDir
    Path dir;

    private byte[] bytes;

    /** 128 KiB: random sectors in zlib and raw chunks, zeroes in zero and ignored ones. */
    @BeforeEach
    void image() throws IOException {
        byte[] content = new byte[256 * 512];
        Random random = new Random(11);
        byte[] noise = new byte[64 * 512];
        random.nextBytes(noise);
        System.arraycopy(noise, 0, content, 0, noise.length);
        Arrays.fill(content, 128 * 512, 192 * 512, (byte) 7);
        Arrays.fill(content, 224 * 512, 256 * 512, (byte) 9);
        bytes = DmgImages.image(content, List.of(new Plan(DmgImages.ZLIB, 32), new Plan(DmgImages.RAW, 32),
                new Plan(DmgImages.ZEROES, 64), new Plan(DmgImages.ZLIB, 64), new Plan(DmgImages.IGNORED, 32),
                new Plan(DmgImages.RAW, 32)), false);
        Files.write(dir.resolve("a.dmg"), bytes);
        Files.write(dir.resolve("r.raw"), content);
    }

    @ParameterizedTest
    @ValueSource(strings = {"info a.dmg", "info --output=json a.dmg", "info -f dmg --backing-chain a.dmg",
        "map a.dmg", "map --output=json a.dmg", "map --output=json -s 20000 -l 70000 a.dmg", "check a.dmg",
        "check --output=json a.dmg", "compare a.dmg r.raw", "compare -f dmg -F raw a.dmg r.raw", "snapshot -l a.dmg",
        "measure -O qcow2 a.dmg", "convert -O dmg r.raw OUT",
        // opened read-write by qemu-img first: QEMU's driver refuses that
        "check -r all a.dmg", "resize a.dmg 1M", "amend -o size=1M a.dmg", "amend -o help a.dmg", "commit a.dmg",
        "commit -d a.dmg", "snapshot -c s a.dmg", "bench -w -c 1 a.dmg", "rebase -u -b x a.dmg", "bitmap --add a.dmg b"})
    void printsWhatQemuImgPrints(String line) throws Exception {
        agree(line);
    }

    @ParameterizedTest
    @ValueSource(strings = {"raw", "qcow2"})
    void convertsAsQemuImg(String format) throws Exception {
        // the images compared too, as both tools made one
        assertEquals(0, agree("convert -O " + format + " a.dmg OUT").qemu().status());
        assertArrayEquals(Files.readAllBytes(dir.resolve("r.raw")), Qemu.convertToRaw(dir, "-f", format,
                dir.resolve("imago.out")));
    }

    @Test
    void qemuIoWriteOpenRefusedAsQemuIo() {
        Path image = dir.resolve("a.dmg");
        Qemu.Output theirs = Qemu.run(dir, Qemu.io(), "-c", "write 0 512", image);
        Run.Result ours = Run.as("qemu-io", "", "-c", "write 0 512", image.toString());
        assertEquals(theirs.status(), ours.status());
        assertEquals(CliDifferential.withoutModuleNotice(theirs.err()), ours.err().replace("imago", "qemu-io"));
    }

    /**
     * Cut short: the trailer is found in the file's last sector counted whole, and the bytes past the end read as
     * zeroes (a trailer missing its last fields opens, with no sectors; one missing its property list's length is
     * QEMU's bare {@code Invalid argument}); shorter than a sector, or empty (then raw, as an empty file is to QEMU).
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 100, 300, 507, 600})
    void truncatedAsQemuImg(int cut) throws Exception {
        Files.write(dir.resolve("t.dmg"), Arrays.copyOf(bytes, bytes.length - cut));
        agree("info t.dmg");
        agree("convert -O raw t.dmg OUT");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 100, 511})
    void tooShortAsQemuImg(int length) throws Exception {
        Files.write(dir.resolve("s.dmg"), Arrays.copyOf(bytes, length));
        agree("info s.dmg");
        agree("info -f dmg s.dmg");
    }

    /** Trailer fields QEMU refuses with a bare {@code Invalid argument}: imago's reasons are for --debug. */
    @ParameterizedTest
    @ValueSource(ints = {0x18, 0xd8, 0xe0, 0x1ec})
    void damagedTrailerAsQemuImg(int field) throws Exception {
        byte[] damaged = bytes.clone();
        ByteBuffer.wrap(damaged).putLong(damaged.length - 512 + field, field == 0x1ec ? Long.MIN_VALUE : 1L << 40);
        Files.write(dir.resolve("d.dmg"), damaged);
        agree("info d.dmg");
    }

    /** Text that is no base64 decodes to damaged bytes, as in glib: here no block table, so reads fail. */
    @Test
    void damagedBase64AsQemuImg() throws Exception {
        String text = new String(bytes, StandardCharsets.ISO_8859_1);
        int data = text.indexOf("<data>") + 6;
        String damaged = text.substring(0, data) + "!!!!!!!!!!" + text.substring(data + 10);
        Files.write(dir.resolve("b.dmg"), damaged.getBytes(StandardCharsets.ISO_8859_1));
        agree("info b.dmg");
        agree("convert -O raw b.dmg OUT");
    }

    /**
     * Runs {@code qemu-img line} and {@code imago line} through {@link CliDifferential#agree}: the same status, output
     * and messages, and the same output image if both made one (its format: the line's {@code -O}).
     */
    private CliDifferential.Outcome agree(String line) throws Exception {
        int space = line.indexOf(' ');
        Matcher format = OUTPUT_FORMAT.matcher(line);
        return new CliDifferential(dir).agree(line.substring(0, space), line.substring(space + 1),
                format.find() ? format.group(1) : "raw");
    }
}
