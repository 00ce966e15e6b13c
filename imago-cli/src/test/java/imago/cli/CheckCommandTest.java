package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code imago check} against {@code qemu-img check} on the same files, made by qemu-img and damaged
 * here: standard output, standard error and exit status must be the same, for human and JSON output,
 * without and with {@code -r leaks} / {@code -r all}.
 */
class CheckCommandTest {
    private static final long OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00L;

    @TempDir
    Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    private Path image(String name) {
        Path f = dir.resolve(name);
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", f, "16M");
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 12k", "-c", "write -c -P 0x33 2M 64k",
                "-c", "write -P 0x22 1M 8k", f);
        return f;
    }

    /** Writes {@code value} over the L2 entry of guest cluster {@code g} (cluster 4096, L1 entry 0). */
    private static void l2(Path f, int g, java.util.function.LongUnaryOperator edit) throws IOException {
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.seek(40);
            long l1 = r.readLong();
            r.seek(l1);
            long l2 = r.readLong() & OFFSET_MASK;
            r.seek(l2 + g * 8L);
            long e = r.readLong();
            r.seek(l2 + g * 8L);
            r.writeLong(edit.applyAsLong(e));
        }
    }

    private static void l1(Path f, java.util.function.LongUnaryOperator edit) throws IOException {
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.seek(40);
            long l1 = r.readLong();
            r.seek(l1);
            long e = r.readLong();
            r.seek(l1);
            r.writeLong(edit.applyAsLong(e));
        }
    }

    private static long dataCluster(Path f, int g) throws IOException {
        long[] entry = new long[1];
        l2(f, g, e -> {
            entry[0] = e;
            return e;
        });
        return (entry[0] & OFFSET_MASK) >>> 12;
    }

    private static long reftableEntry(Path f) throws IOException {
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "r")) {
            r.seek(48);
            r.seek(r.readLong());
            return r.readLong();
        }
    }

    /** Sets a 16-bit refcount (the default width) in the first refcount block. */
    private static void refcount(Path f, long cluster, int value) throws IOException {
        long block = reftableEntry(f);
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.seek(block + 2 * cluster);
            r.writeShort(value);
        }
    }

    private static void reftableEntry0(Path f, long value) throws IOException {
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.seek(48);
            long rt = r.readLong();
            r.seek(rt);
            r.writeLong(value);
        }
    }

    /** Sets a 32-bit field of the first snapshot table entry, or with {@code at} 60, the snapshot count. */
    private static void snapshotField(Path f, int at, int value) throws IOException {
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.seek(64);
            long table = r.readLong();
            r.seek(at == 60 ? 60 : table + at);
            r.writeInt(value);
        }
    }

    private Path damaged(String kind) throws IOException {
        Path f = image(kind + ".qcow2");
        if (kind.startsWith("snap")) {
            Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s1", f);
            Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0x44 4k 4k", f);
        }
        switch (kind) {
            case "snapclean" -> { }
            case "snapcount" -> snapshotField(f, 60, 2);
            case "snapnodisksize" -> snapshotField(f, 36, 8);
            case "snapl1unaligned" -> snapshotField(f, 4, 512);
            case "snaptoomany" -> snapshotField(f, 60, 65537);
            case "snapextra" -> snapshotField(f, 36, 1025);
            case "snaptableunaligned" -> {
                try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
                    r.seek(64);
                    long table = r.readLong();
                    r.seek(64);
                    r.writeLong(table + 8);
                }
            }
            case "clean" -> { }
            case "leak" -> l2(f, 1, e -> 0);
            case "copied" -> l2(f, 0, e -> e & ~(1L << 63));
            case "shared" -> l2(f, 1, e -> 0);
            case "norefblock" -> reftableEntry0(f, 0);
            case "refzero" -> refcount(f, dataCluster(f, 1), 0);
            case "refhigh" -> refcount(f, dataCluster(f, 1), 5);
            case "l1reserved" -> l1(f, e -> e | 2);
            case "l1copied" -> l1(f, e -> e & ~(1L << 63));
            case "l2reserved" -> l2(f, 1, e -> e | 2);
            case "l2unaligned" -> l2(f, 1, e -> e + 512);
            case "l2pastend" -> l2(f, 1, e -> (1L << 30) | (1L << 63));
            case "l2header" -> l2(f, 1, e -> 1L << 63);
            case "refblockunaligned" -> reftableEntry0(f, reftableEntry(f) + 512);
            case "refblockreserved" -> reftableEntry0(f, reftableEntry(f) | 1);
            default -> throw new IllegalArgumentException(kind);
        }
        if (kind.equals("shared")) {
            l2(f, 2, e -> e);
            long first;
            try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "r")) {
                r.seek(40);
                long l1 = r.readLong();
                r.seek(l1);
                long l2 = r.readLong() & OFFSET_MASK;
                r.seek(l2);
                first = r.readLong();
            }
            l2(f, 2, e -> first);
        }
        return f;
    }

    private void same(List<String> args) {
        List<Object> q = new ArrayList<>(List.of("qemu-img", "check"));
        q.addAll(args);
        Qemu.Output byQemu = Qemu.run(dir, q.toArray());
        List<String> i = new ArrayList<>(List.of("check"));
        i.addAll(args);
        Run.Result byImago = imago(i.toArray(String[]::new));
        String what = String.join(" ", args);
        assertEquals(byQemu.out(), byImago.out(), () -> what + ": stdout; stderr was\n" + byImago.err());
        assertEquals(byQemu.err().replace("qemu-img: ", "imago: "), byImago.err(), what + ": stderr");
        assertEquals(byQemu.status(), byImago.status(), what + ": exit status");
    }

    @ParameterizedTest
    @ValueSource(strings = {"clean", "leak", "copied", "shared", "norefblock", "refzero", "refhigh", "l1reserved",
        "l1copied", "l2reserved", "l2unaligned", "l2pastend", "l2header", "refblockunaligned", "refblockreserved",
        "snapclean", "snapcount", "snapnodisksize", "snapl1unaligned"})
    void checkPrintsWhatQemuImgPrints(String kind) throws IOException {
        Path f = damaged(kind);
        same(List.of(f.toString()));
        same(List.of("--output=json", f.toString()));
        same(List.of("-q", "-f", "qcow2", f.toString()));
    }

    @ParameterizedTest
    @ValueSource(strings = {"clean", "leak", "copied", "shared", "norefblock", "refzero", "refhigh", "l1reserved",
        "l1copied", "l2reserved", "l2unaligned", "l2pastend", "l2header", "snapclean", "snapcount", "snapnodisksize",
        "snapl1unaligned"})
    void repairPrintsWhatQemuImgPrints(String kind) throws IOException {
        Path f = damaged(kind);
        for (String mode : new String[] {"leaks", "all"}) {
            for (String out : new String[] {"human", "json"}) {
                Path a = dir.resolve("a-" + mode + out + ".qcow2");
                Path b = dir.resolve("b-" + mode + out + ".qcow2");
                Files.copy(f, a);
                Files.copy(f, b);
                Qemu.Output byQemu = Qemu.run(dir, "qemu-img", "check", "-r", mode, "--output=" + out, b.toString());
                Run.Result byImago = imago("check", "-r", mode, "--output=" + out, a.toString());
                assertEquals(byQemu.out().replace(b.toString(), a.toString()), byImago.out(),
                        () -> kind + " -r " + mode + "\n" + byQemu.err() + "\n---\n" + byImago.err());
                assertEquals(byQemu.status(), byImago.status(), () -> kind + " -r " + mode + ": exit status");
                assertEquals(byQemu.err().replace("qemu-img: ", "imago: ").replace(b.toString(), a.toString()),
                        byImago.err(), () -> kind + " -r " + mode + ": stderr");
                same(List.of(a.toString()));
            }
        }
    }

    /**
     * A snapshot table the check cannot read fails it as qemu-img's (exit status 1, no report); qemu-img says
     * some of these lines through its error reporting, so they differ by the program name prefix.
     */
    @ParameterizedTest
    @ValueSource(strings = {"snaptoomany", "snapextra", "snaptableunaligned"})
    void unreadableSnapshotTableFailsTheCheck(String kind) throws IOException {
        Path f = damaged(kind);
        for (String mode : new String[] {"none", "leaks", "all"}) {
            for (String out : new String[] {"human", "json"}) {
                Path a = dir.resolve("a-" + mode + out + ".qcow2");
                Path b = dir.resolve("b-" + mode + out + ".qcow2");
                Files.copy(f, a);
                Files.copy(f, b);
                List<String> args = new ArrayList<>(List.of("check", "--output=" + out));
                if (!mode.equals("none")) {
                    args.addAll(List.of("-r", mode));
                }
                List<Object> q = new ArrayList<>(List.of("qemu-img"));
                q.addAll(args);
                q.add(b.toString());
                args.add(a.toString());
                Qemu.Output byQemu = Qemu.run(dir, q.toArray());
                Run.Result byImago = imago(args.toArray(String[]::new));
                String what = kind + " " + args;
                assertEquals(byQemu.status(), byImago.status(), () -> what + ": exit status\n" + byQemu.err() + "\n---\n"
                        + byImago.err());
                assertEquals(byQemu.out().replace(b.toString(), a.toString()), byImago.out(), what);
                if (byQemu.status() == 1) {
                    assertEquals(lastLine(byQemu.err()).replace("qemu-img: ", "imago: "), lastLine(byImago.err()),
                            what);
                }
            }
        }
    }

    private static String lastLine(String s) {
        String[] lines = s.strip().split("\\n");
        return lines[lines.length - 1];
    }

    @Test
    void rawHasNoChecks() {
        Path f = dir.resolve("r.img");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", f, "1M");
        same(List.of(f.toString()));
        same(List.of("--output=json", f.toString()));
    }

    @Test
    void badArgumentsAsQemuImg() throws IOException {
        Path f = damaged("clean");
        Run.Result r = imago("check", "-r", "foo", f.toString());
        assertEquals(1, r.status());
        assertEquals("imago: Unknown option value for -r (expecting 'leaks' or 'all'): foo\n"
                + "Try 'imago --help' for more information\n", r.err());
        Run.Result o = imago("check", "--output=xml", f.toString());
        assertEquals("imago: --output must be used with human or json as argument.\n", o.err());
        assertEquals(1, o.status());
        Run.Result u = imago("check", "-U", "-r", "all", f.toString());
        assertEquals("imago: Could not open '" + f + "': force-share=on can only be used with read-only images\n",
                u.err());
    }
}
