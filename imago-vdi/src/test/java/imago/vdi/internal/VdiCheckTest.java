package imago.vdi.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CheckReport;
import imago.api.Feature;
import imago.api.Image;
import imago.api.Repair;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * imago's vdi check against {@code qemu-img check}: the same error lines, the same number of errors and the same
 * exit status, on clean images and on block maps damaged in each way QEMU's check looks for.
 */
class VdiCheckTest {
    private static final Pattern ERRORS = Pattern.compile("(\\d+) errors were found on the image");

    /** qemu-img writes blocks 0, 2 and 4 of a 6 MiB image (indices 0, 1, 2), then a field or entry is patched. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({
        "clean, 0, 0",
        "count too high, 0x184, 5",
        "count too low, 0x184, 1",
        "shared block, 0x208, 0",
        "index too large, 0x208, 9",
        "index far too large, 0x210, 0x7ffffff0",
        "zero entry, 0x208, 0xfffffffe"})
    void reportsWhatQemuReports(String what, String at, String value, @TempDir Path dir) throws IOException {
        Qemu.require();
        Path image = dir.resolve("img.vdi");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vdi", image, "6M");
        QemuReads.qemuIo(dir, "vdi", "img.vdi", List.of("write -P 1 0 4k", "write -P 2 2M 4k", "write -P 3 4M 4k"));
        if (!what.equals("clean")) {
            patch(image, Long.decode(at), Long.decode(value).intValue());
        }
        Qemu.Output qemu = Qemu.check(image, "vdi");
        CheckReport report;
        try (Image img = Imago.opener().path(image).format("vdi").forCheck(true).open()) {
            report = img.check(Repair.NONE);
        }
        List<String> qemuErrors = qemu.err().lines().filter(l -> l.startsWith("ERROR")).toList();
        assertEquals(qemuErrors, report.messages(), what);
        Matcher m = ERRORS.matcher(qemu.out());
        assertEquals(m.find() ? Long.parseLong(m.group(1)) : 0, report.corruptions(), what + ": " + qemu.out());
        assertEquals(qemu.status(), report.exitStatus(), what);
    }

    /** Neither repairs: qemu-img exits with 63 ("does not support checks"), imago refuses with CHECK. */
    @Test
    void repairIsRefusedAsQemuRefusesIt(@TempDir Path dir) throws IOException {
        Qemu.require();
        Path image = dir.resolve("img.vdi");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vdi", image, "2M");
        for (String mode : List.of("leaks", "all")) {
            assertEquals(63, Qemu.run(dir, "qemu-img", "check", "-r", mode, image).status());
        }
        try (Image img = Imago.opener().path(image).format("vdi").forCheck(true).writable(true).open()) {
            for (Repair repair : List.of(Repair.LEAKS, Repair.ALL)) {
                UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                        () -> img.check(repair));
                assertEquals(Feature.CHECK, e.feature());
            }
        }
    }

    /** A writable open makes a count that is off, with the blocks in use dense, true again. */
    @Test
    void aWritableOpenRepairsACountWithDenseBlocks(@TempDir Path dir) throws IOException {
        Qemu.require();
        Path image = dir.resolve("img.vdi");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vdi", image, "4M");
        QemuReads.qemuIo(dir, "vdi", "img.vdi", List.of("write -P 1 0 4k", "write -P 2 2M 4k"));
        patch(image, 0x184, 3);
        assertEquals(2, Qemu.check(image, "vdi").status());
        try (Image img = Imago.opener().path(image).format("vdi").writable(true).open()) {
            img.write(ByteBuffer.wrap(new byte[] {9}), 3L << 20);
        }
        Qemu.Output check = Qemu.check(image, "vdi");
        assertEquals(0, check.status(), check.err());
    }

    private static void patch(Path file, long at, int value) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, value), at);
        }
    }
}
