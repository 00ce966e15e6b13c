package imago.qed.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CheckReport;
import imago.api.Image;
import imago.api.Repair;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.TreeMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code check} and {@code check -r} against qemu-img's on the same damaged files: the same counts and exit status,
 * and after a repair the same bytes; a writable open of an image marked need-check repairs it as QEMU's does.
 */
class QedCheckTest {
    private static final int CLUSTER = 4096;
    private static final Pattern FIELD = Pattern.compile("\"([a-z-]+)\":\\s*(\\d+)");

    @TempDir
    Path dir;

    /** qemu-img's image: 4 KiB clusters, two-cluster tables, data in two L2 tables, a zero cluster. */
    private Path image() {
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qed", "-o", "cluster_size=4096,table_size=2", "img.qed", "8M");
        QemuReads.qemuIo(dir, "qed", "img.qed", List.of("write -P 1 0 12k", "write -P 2 5M 8k",
                "write -z 64k 4k", "write -P 3 20k 4k"));
        return dir.resolve("img.qed");
    }

    private static void patch(Path file, Consumer<RandomAccessFile> change) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            change.accept(f);
        }
    }

    private static long le(RandomAccessFile f, long at) {
        try {
            f.seek(at);
            return Long.reverseBytes(f.readLong());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static void putLe(RandomAccessFile f, long at, long value) {
        try {
            f.seek(at);
            f.writeLong(Long.reverseBytes(value));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Map<String, Long> fields(String json) {
        Map<String, Long> out = new TreeMap<>();
        Matcher m = FIELD.matcher(json);
        while (m.find()) {
            out.put(m.group(1), Long.parseLong(m.group(2)));
        }
        return out;
    }

    private static Map<String, Long> fields(CheckReport r) {
        Map<String, Long> out = new TreeMap<>();
        out.put("check-errors", r.checkErrors());
        for (var e : Map.of("corruptions", r.corruptions(), "leaks", r.leaks(), "corruptions-fixed",
                r.corruptionsFixed(), "leaks-fixed", r.leaksFixed(), "total-clusters", r.totalClusters(),
                "allocated-clusters", r.allocatedClusters(), "fragmented-clusters", r.fragmentedClusters())
                .entrySet()) {
            if (e.getValue() != 0) {
                out.put(e.getKey(), e.getValue());
            }
        }
        return out;
    }

    /** Checks {@code file} with qemu-img and a copy with imago, with {@code repair}, and compares everything. */
    private void assertChecksLikeQemu(Path file, Repair repair) throws IOException {
        Path ours = Files.copy(file, dir.resolve("ours.qed"), StandardCopyOption.REPLACE_EXISTING);
        List<Object> cmd = new java.util.ArrayList<>(List.of(Qemu.img(), "check", "-f", "qed", "--output=json"));
        if (repair != Repair.NONE) {
            cmd.addAll(List.of("-r", repair == Repair.ALL ? "all" : "leaks"));
        }
        cmd.add(file);
        Qemu.Output q = Qemu.run(dir, cmd.toArray());
        CheckReport r;
        try (Image image = Imago.opener().path(ours).format("qed").forCheck(true).writable(repair != Repair.NONE)
                .open()) {
            r = image.check(repair);
        }
        Map<String, Long> expected = fields(q.out());
        expected.remove("image-end-offset");
        assertEquals(expected.toString(), fields(r).toString(), q.out() + q.err());
        assertEquals(q.status(), r.exitStatus(), q.out() + q.err());
        assertArrayEquals(Files.readAllBytes(file), Files.readAllBytes(ours), "the files after the check");
    }

    @ParameterizedTest
    @ValueSource(strings = {"NONE", "LEAKS", "ALL"})
    void aCleanImageChecksClean(String repair) throws IOException {
        assertChecksLikeQemu(image(), Repair.valueOf(repair));
    }

    @ParameterizedTest
    @ValueSource(strings = {"NONE", "ALL"})
    void leakedClustersAreCountedNeverFreed(String repair) throws IOException {
        Path img = image();
        patch(img, f -> {
            try {
                f.setLength(f.length() + 3 * CLUSTER);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        assertChecksLikeQemu(img, Repair.valueOf(repair));
    }

    @ParameterizedTest
    @ValueSource(strings = {"NONE", "LEAKS", "ALL"})
    void entriesOutsideTheFileAreCorruptionsThatRepairClears(String repair) throws IOException {
        Path img = image();
        patch(img, f -> {
            long l1 = le(f, 40);
            long l2 = le(f, l1);
            putLe(f, l2 + 8, 1L << 40); // a data cluster past the end
            putLe(f, l1 + 8 * 300, 1L << 40); // an L2 table past the end
        });
        assertChecksLikeQemu(img, Repair.valueOf(repair));
    }

    @Test
    void aClusterNamedTwiceIsACorruptionRepairKeeps() throws IOException {
        Path img = image();
        patch(img, f -> {
            long l1 = le(f, 40);
            long l2 = le(f, l1);
            putLe(f, l2 + 8 * 7, le(f, l2));
        });
        assertChecksLikeQemu(img, Repair.ALL);
    }

    /** A writable open of a need-check image repairs it as QEMU's open does, and clears the bit on close. */
    @Test
    void aWritableOpenOfADirtyImageRepairsItAsQemuDoes() throws IOException {
        Path img = image();
        patch(img, f -> {
            putLe(f, 16, le(f, 16) | QedHeader.NEED_CHECK);
            long l1 = le(f, 40);
            long l2 = le(f, l1);
            putLe(f, l2 + 16, 1L << 40);
        });
        Path ours = Files.copy(img, dir.resolve("dirty-ours.qed"));
        try (Image image = Imago.opener().path(ours).open()) {
            assertTrue(image.info().dirty(), "info shows the need-check bit");
        }
        Qemu.ok(dir, Qemu.io(), "-f", "qed", "-c", "flush", img);
        try (Image image = Imago.opener().path(ours).writable(true).open()) {
            assertFalse(image.info().dirty(), "repaired and marked clean");
        }
        assertArrayEquals(Files.readAllBytes(img), Files.readAllBytes(ours));
        assertEquals(3, Qemu.check(ours, "qed").status(), "the cluster the cleared entry named stays leaked, as in QEMU");
    }
}
