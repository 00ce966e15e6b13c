package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code Imago.create} of qcow2 images must produce exactly the bytes {@code qemu-img create} 7.2 writes
 * for the same options, and {@code qemu-img check} must find them clean.
 */
class Qcow2CreateTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void base() {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "64M");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "base.raw", "3M");
    }

    /** One case: {@code -o} options, size, backing file and format. */
    record Case(String options, long size, String backing, String backingFmt) {
        @Override
        public String toString() {
            return "[" + options + "] size=" + size + (backing != null ? " -b " + backing + " -F " + backingFmt : "");
        }
    }

    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        out.add(new Case("", 1L << 30, null, null));
        out.add(new Case("", 0, null, null));
        out.add(new Case("", 1000, null, null));
        out.add(new Case("", 1L << 40, null, null));
        out.add(new Case("compat=0.10", 1L << 30, null, null));
        out.add(new Case("compat=1.1,lazy_refcounts=on", 5L << 20, null, null));
        for (int cs : new int[] {512, 1024, 4096, 65536, 2 << 20}) {
            out.add(new Case("cluster_size=" + cs, 16L << 20, null, null));
        }
        out.add(new Case("cluster_size=2M", 1L << 40, null, null));
        for (int rc : new int[] {1, 2, 4, 8, 16, 32, 64}) {
            out.add(new Case("refcount_bits=" + rc, 3L << 30, null, null));
        }
        out.add(new Case("cluster_size=512,refcount_bits=64", 8L << 20, null, null));
        out.add(new Case("cluster_size=512,refcount_bits=1", 16L << 20, null, null));
        // L1 tables the first refcount block does not cover: more blocks after them, as QEMU places them
        for (long size : new long[] {64L << 20, 1L << 30, 4L << 30}) {
            out.add(new Case("cluster_size=512,refcount_bits=64", size, null, null));
        }
        out.add(new Case("cluster_size=512", 1L << 30, null, null));
        out.add(new Case("compat=0.10,cluster_size=512", 2L << 30, "base.qcow2", "qcow2"));
        out.add(new Case("cluster_size=1024,extended_l2=off,refcount_bits=8", 64L << 30, null, null));
        out.add(new Case("cluster_size=512,refcount_bits=32,extended_l2=off", 3L << 30, null, null));
        out.add(new Case("cluster_size=512,refcount_bits=1", 64L << 30, null, null));
        out.add(new Case("extended_l2=on", 1L << 30, null, null));
        out.add(new Case("extended_l2=on,cluster_size=16k", 1L << 30, null, null));
        out.add(new Case("compression_type=zstd", 1L << 30, null, null));
        out.add(new Case("compression_type=zstd,extended_l2=on,lazy_refcounts=on,refcount_bits=1", 1L << 30, null,
                null));
        out.add(new Case("", 64L << 20, "base.qcow2", "qcow2"));
        out.add(new Case("compat=0.10", 64L << 20, "base.qcow2", "qcow2"));
        out.add(new Case("cluster_size=4096", 3L << 20, "base.raw", "raw"));
        out.add(new Case("", 128L << 20, dir.resolve("base.raw").toString(), "raw"));
        return out.stream();
    }

    static Map<String, String> parse(String options) {
        Map<String, String> m = new LinkedHashMap<>();
        if (!options.isEmpty()) {
            for (String kv : options.split(",")) {
                String[] p = kv.split("=", 2);
                m.put(p[0], p[1]);
            }
        }
        return m;
    }

    static int counter;

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void sameBytesAsQemuImg(Case c) throws IOException {
        int n = counter++;
        String q = "q" + n + ".qcow2";
        String i = "i" + n + ".qcow2";
        List<Object> cmd = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
        if (!c.options().isEmpty()) {
            cmd.add("-o");
            cmd.add(c.options());
        }
        if (c.backing() != null) {
            cmd.addAll(List.of("-b", c.backing(), "-F", c.backingFmt()));
        }
        cmd.add(q);
        cmd.add(Long.toString(c.size()));
        Qemu.ok(dir, cmd.toArray());

        CreateOptions.Builder b = CreateOptions.builder().size(c.size());
        parse(c.options()).forEach(b::option);
        if (c.backing() != null) {
            b.backingFile(c.backing()).backingFormat(c.backingFmt());
        }
        Imago.create(dir.resolve(i), "qcow2", b.build());
        byte[] expected = Files.readAllBytes(dir.resolve(q));
        byte[] actual = Files.readAllBytes(dir.resolve(i));
        assertEquals(expected.length, actual.length, "file length");
        assertArrayEquals(expected, actual);
        Qemu.ok(dir, "qemu-img", "check", i);
        String qi = Qemu.ok(dir, "qemu-img", "info", "--output=json", q);
        String ii = Qemu.ok(dir, "qemu-img", "info", "--output=json", i);
        assertEquals(stripVolatile(qi), stripVolatile(ii));
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"data_file=DATA", "data_file=DATA,cluster_size=4096", "data_file=DATA,lazy_refcounts=on",
        "data_file=DATA,-b", "data_file=DATA,data_file_raw=on", "data_file=DATA,data_file_raw=on,cluster_size=4096",
        "data_file=DATA,preallocation=metadata", "data_file=DATA,preallocation=full,cluster_size=4096",
        "data_file=DATA,data_file_raw=on,preallocation=falloc", "data_file=DATA,extended_l2=on,preallocation=metadata",
        "data_file=DATA,extended_l2=on,preallocation=full,-b", "data_file=DATA,extended_l2=on,data_file_raw=on"})
    void externalDataFilesAsQemuImgCreatesThem(String options) throws IOException {
        int n = counter++;
        boolean backed = options.endsWith(",-b");
        String o = options.replace(",-b", "");
        List<Object> cmd = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2", "-o",
                o.replace("DATA", "dq" + n + ".raw")));
        CreateOptions.Builder b = CreateOptions.builder().size(5L << 20);
        parse(o.replace("DATA", "di" + n + ".raw")).forEach(b::option);
        if (backed) {
            cmd.addAll(List.of("-b", "base.qcow2", "-F", "qcow2"));
            b.backingFile("base.qcow2").backingFormat("qcow2");
        }
        cmd.addAll(List.of("q" + n + ".qcow2", 5L << 20));
        Qemu.ok(dir, cmd.toArray());
        Imago.create(dir.resolve("i" + n + ".qcow2"), "qcow2", b.build());
        byte[] expected = Files.readAllBytes(dir.resolve("q" + n + ".qcow2"));
        byte[] actual = Files.readAllBytes(dir.resolve("i" + n + ".qcow2"));
        // the same bytes but for the data file's name
        assertArrayEquals(new String(expected, StandardCharsets.ISO_8859_1).replace("dq" + n, "dX").getBytes(
                StandardCharsets.ISO_8859_1), new String(actual, StandardCharsets.ISO_8859_1).replace("di" + n, "dX")
                .getBytes(StandardCharsets.ISO_8859_1));
        assertEquals(Files.size(dir.resolve("dq" + n + ".raw")), Files.size(dir.resolve("di" + n + ".raw")));
        Qemu.ok(dir, "qemu-img", "check", "i" + n + ".qcow2");
        Qemu.ok(dir, "qemu-io", "-c", "write -P 7 1M 100k", "i" + n + ".qcow2");
        Qemu.ok(dir, "qemu-io", "-c", "read -P 7 1M 100k", "i" + n + ".qcow2");
    }

    @Test
    void rawExternalDataFile() throws IOException {
        Imago.create(dir.resolve("raw-data.qcow2"), "qcow2", CreateOptions.builder().size(3L << 20)
                .option("data_file", "raw-data.raw").option("data_file_raw", "on").build());
        Qemu.ok(dir, "qemu-img", "check", "raw-data.qcow2");
        String info = Qemu.ok(dir, "qemu-img", "info", "raw-data.qcow2");
        assertTrue(info.contains("data file raw: true"), info);
        assertEquals(3L << 20, Files.size(dir.resolve("raw-data.raw")));
        assertThrows(IllegalArgumentException.class, () -> Imago.create(dir.resolve("raw-b.qcow2"), "qcow2",
                CreateOptions.builder().size(1 << 20).option("data_file", "x.raw").option("data_file_raw", "on")
                        .backingFile("base.qcow2").backingFormat("qcow2").build()));
    }

    private static String stripVolatile(String json) {
        return json.replaceAll("\"filename\": \"[^\"]*\"", "").replaceAll("\"actual-size\": \\d+", "");
    }

    /**
     * An L1 table whose refcount blocks do not fit the first refcount table cluster: the table grows too (not
     * byte for byte as QEMU, whose qcow2_refcount_area lays it out differently), clean for qemu-img check, no
     * leak, the same info, and writable by qemu-io.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"16G", "40G"})
    void largeL1WithAGrownRefcountTable(String size) throws IOException {
        int n = counter++;
        Path q = dir.resolve("gq" + n + ".qcow2");
        Path i = dir.resolve("gi" + n + ".qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=64", q, size);
        Imago.create(i, "qcow2", CreateOptions.builder().size(Qcow2CreateSpec.parseSize(size, "size"))
                .option("cluster_size", "512").option("refcount_bits", "64").build());
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", i);
        assertEquals(0, check.status(), check.out() + check.err());
        assertTrue(check.out().contains("No errors were found"), check.out());
        assertEquals(stripVolatile(Qemu.ok(dir, "qemu-img", "info", "--output=json", q)),
                stripVolatile(Qemu.ok(dir, "qemu-img", "info", "--output=json", i)));
        assertTrue(ByteBuffer.wrap(Files.readAllBytes(i), 56, 4).getInt() > 1, "the refcount table grew");
        // about QEMU's length: the L1 table, its refcount blocks and the grown table
        assertTrue(Math.abs(Files.size(i) - Files.size(q)) <= 16 * 512, Files.size(i) + " vs " + Files.size(q));
        Qemu.ok(dir, "qemu-io", "-c", "write -P 9 0 64k", "-c", "write -P 8 15G 64k", i);
        Qemu.ok(dir, "qemu-io", "-c", "read -P 9 0 64k", "-c", "read -P 8 15G 64k", i);
        Qemu.ok(dir, "qemu-img", "check", i);
    }

    @Test
    void refusedAndInvalidOptions() {
        IllegalArgumentException backed = assertThrows(IllegalArgumentException.class, () -> Imago.create(
                dir.resolve("r2.qcow2"), "qcow2", CreateOptions.builder().size(1 << 20).backingFile("b.raw")
                        .option("preallocation", "full").build()));
        assertEquals("Backing file and preallocation can only be used at the same time if extended_l2 is on",
                backed.getMessage());
        // preallocating needs the data file, which only Imago.create makes and passes
        try (imago.storage.memory.MemoryStorage s = imago.storage.memory.MemoryStorage.of("create-r3",
                java.nio.ByteBuffer.allocate(0))) {
            assertThrows(UnsupportedFeatureException.class, () -> Qcow2Create.create(s, CreateOptions.builder()
                    .size(1 << 20).option("data_file", "d.raw").option("preallocation", "metadata").build()));
        } finally {
            imago.storage.memory.MemoryStorage.delete("create-r3");
        }
        for (String[] bad : new String[][] {{"cluster_size", "1000"}, {"cluster_size", "4M"}, {"refcount_bits", "3"},
                {"refcount_bits", "128"}, {"compat", "2"}, {"nonsense", "1"}, {"lazy_refcounts", "maybe"},
                {"compression_type", "lz4"}, {"data_file_raw", "on"}}) {
            assertThrows(IllegalArgumentException.class, () -> Imago.create(dir.resolve("bad.qcow2"), "qcow2",
                    CreateOptions.builder().size(1 << 20).option(bad[0], bad[1]).build()), bad[0] + "=" + bad[1]);
        }
        for (String v2bad : new String[] {"lazy_refcounts=on", "refcount_bits=1", "extended_l2=on",
                "compression_type=zstd"}) {
            String[] kv = v2bad.split("=");
            assertThrows(IllegalArgumentException.class, () -> Imago.create(dir.resolve("bad2.qcow2"), "qcow2",
                    CreateOptions.builder().size(1 << 20).option("compat", "0.10").option(kv[0], kv[1]).build()),
                    v2bad);
        }
        assertThrows(IllegalArgumentException.class, () -> Imago.create(dir.resolve("bad3.qcow2"), "qcow2",
                CreateOptions.builder().size(1 << 20).option("extended_l2", "on").option("cluster_size", "8k").build()));
        for (String name : new String[] {"r2.qcow2", "bad.qcow2", "bad2.qcow2", "bad3.qcow2"}) {
            assertFalse(Files.exists(dir.resolve(name)), name + ": qemu-img leaves no file");
        }
    }

    /**
     * qemu-img refuses qcow2's options before it makes the file: through {@code Imago.create} (checkCreate) a refusal
     * makes no file, no external data file, and leaves an existing file as it was (qemu-img deletes it).
     */
    @Test
    void refusalLeavesTheFilesAsTheyWere() throws IOException {
        Path kept = Files.writeString(dir.resolve("kept.qcow2"), "the user's");
        for (String[] bad : new String[][] {{"refcount_bits", "-1"}, {"compat", "foo"}, {"encrypt.format", "luks"},
            {"encryption", "yes"}, {"encryption", "true"}}) {
            assertThrows(IllegalArgumentException.class, () -> Imago.create(kept, "qcow2",
                    CreateOptions.builder().size(1 << 20).option(bad[0], bad[1]).build()), bad[0]);
            assertEquals("the user's", Files.readString(kept), bad[0]);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Imago.create(
                dir.resolve("df.qcow2"), "qcow2", CreateOptions.builder().size(1 << 20).option("data_file", "df.raw")
                        .option("compat", "0.10").build()));
        assertEquals("External data files are only supported with compatibility level 1.1 and above (use version=v3 or "
                + "greater)", e.getMessage());
        assertFalse(Files.exists(dir.resolve("df.qcow2")), "the image");
        assertFalse(Files.exists(dir.resolve("df.raw")), "the data file");
    }
}
