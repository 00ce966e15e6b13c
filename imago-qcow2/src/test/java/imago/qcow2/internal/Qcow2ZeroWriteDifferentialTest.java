package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.Image;
import imago.api.ImageException;
import imago.api.ZeroFlag;
import imago.probe.Imago;
import imago.testkit.PropertyRuns;
import imago.testkit.Qemu;
import imago.testkit.QemuMap;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Zero writes (plain, with unmap, with no fallback) mixed with data writes and discards, in seeded random
 * sequences of whole and partial clusters and subclusters over a starting point with data, zero and compressed
 * clusters, run through qemu-io on one copy of an image and through imago's API on another: each step must succeed or fail alike, and the copies must end with
 * the same allocation ({@code qemu-img map --output=json}), the same content ({@code qemu-img compare}) and a
 * clean {@code qemu-img check}. Sampled over qcow2 v2 and v3, standard and extended L2 entries, no backing file,
 * a qcow2 backing file (data, zero and unallocated clusters, shorter than the image) and a raw one with holes,
 * and clusters shared with an internal snapshot. The seed is printed; {@code -Dimago.seed=N} replays it.
 */
class Qcow2ZeroWriteDifferentialTest {
    @TempDir
    static Path dir;

    private static int counter;

    /** What lies below the image. */
    enum Backing { NONE, QCOW2, RAW }

    /**
     * One configuration.
     *
     * @param compat "0.10" (v2, no zero flag) or "1.1"
     * @param clusterSize the cluster size
     * @param extendedL2 extended L2 entries (subclusters of 1/32 cluster)
     * @param backing what lies below
     * @param snapshot whether the starting clusters are shared with an internal snapshot
     */
    record Case(String compat, int clusterSize, boolean extendedL2, Backing backing, boolean snapshot) {
        @Override
        public String toString() {
            return "compat=" + compat + " cluster_size=" + clusterSize + (extendedL2 ? " extended_l2" : "")
                    + " backing=" + backing.name().toLowerCase() + (snapshot ? " snapshot" : "");
        }

        /** The zero-write unit: the subcluster with extended L2 entries, else the cluster. */
        int unit() {
            return extendedL2 ? clusterSize / 32 : clusterSize;
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case("1.1", 65536, false, Backing.NONE, false),
                new Case("1.1", 4096, false, Backing.QCOW2, false),
                new Case("1.1", 65536, false, Backing.RAW, false),
                new Case("1.1", 65536, false, Backing.QCOW2, true),
                new Case("1.1", 65536, true, Backing.NONE, false),
                new Case("1.1", 16384, true, Backing.QCOW2, false),
                new Case("1.1", 32768, true, Backing.RAW, true),
                new Case("0.10", 65536, false, Backing.NONE, false),
                new Case("0.10", 16384, false, Backing.QCOW2, false),
                new Case("0.10", 4096, false, Backing.NONE, true));
    }

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /** One step, as a qemu-io command and as the same call through the API. */
    record Op(Kind kind, long offset, int length, int pattern, Set<ZeroFlag> flags) {
        enum Kind { WRITE, COMPRESSED, ZERO, DISCARD }

        String qemuIo() {
            return switch (kind) {
                case WRITE -> "write -P " + pattern + " " + offset + " " + length;
                case COMPRESSED -> "write -c -P " + pattern + " " + offset + " " + length;
                case ZERO -> "write -z" + (flags.contains(ZeroFlag.MAY_UNMAP) ? " -u" : "")
                        + (flags.contains(ZeroFlag.NO_FALLBACK) ? " -n" : "") + " " + offset + " " + length;
                case DISCARD -> "discard " + offset + " " + length;
            };
        }

        /** Applies the step: "ok", or "failed: why" when imago refused it (an image exception, as qemu-io fails). */
        String applyTo(Image image) throws IOException {
            try {
                switch (kind) {
                    case WRITE -> image.write(ByteBuffer.wrap(Qcow2WriteTest.filled(pattern, length)), offset);
                    case COMPRESSED -> image.writeCompressed(ByteBuffer.wrap(Qcow2WriteTest.filled(pattern, length)),
                            offset);
                    case ZERO -> image.writeZeroes(offset, length, flags);
                    case DISCARD -> image.discard(offset, length);
                }
                return "ok";
            } catch (ImageException e) {
                return "failed: " + e.getMessage();
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void allocationMatchesQemuIo(Case c) throws IOException {
        Random r = new Random(PropertyRuns.seed("Qcow2ZeroWriteDifferentialTest " + c));
        String n = "z" + counter++;
        int cs = c.clusterSize();
        long size = 24L * cs + 1536;
        Path q = dir.resolve(n + ".qemu.qcow2");
        Path i = dir.resolve(n + ".imago.qcow2");
        List<Object> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2", "-o",
                "compat=" + c.compat() + ",cluster_size=" + cs + (c.extendedL2() ? ",extended_l2=on" : "")));
        switch (c.backing()) {
            case NONE -> { }
            case QCOW2 -> {
                // data, zero and unallocated clusters, partial ones too, and shorter than the image
                Path base = dir.resolve(n + ".base.qcow2");
                long baseSize = size * 3 / 4 / 512 * 512;
                Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=" + cs, base, baseSize);
                qemuIo(base, randomOps(r, c, baseSize, 8, false));
                create.addAll(List.of("-b", base.getFileName().toString(), "-F", "qcow2"));
            }
            case RAW -> {
                // a sparse file: data where written, holes elsewhere, and half as long as the image
                Path base = dir.resolve(n + ".base.raw");
                Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", base, size / 2 / 512 * 512);
                List<String> writes = new ArrayList<>();
                for (int k = 0; k < 6; k++) {
                    writes.add("write -P " + (1 + r.nextInt(250)) + " " + r.nextInt((int) (size / 2 - 2L * cs))
                            / 512 * 512 + " " + (512 + r.nextInt(cs)) / 512 * 512);
                }
                Qcow2DifferentialTest.qemuIo(dir, base.toString(), "raw", writes);
                create.addAll(List.of("-b", base.getFileName().toString(), "-F", "raw"));
            }
        }
        create.addAll(List.of(q, size));
        Qemu.ok(dir, create.toArray());
        // a starting point written by qemu-io, shared with a snapshot in some cases
        qemuIo(q, randomOps(r, c, size, 6, false));
        if (c.snapshot()) {
            Qemu.ok(dir, "qemu-img", "snapshot", "-c", "before", q);
        }
        Files.copy(q, i, StandardCopyOption.REPLACE_EXISTING);

        List<Op> ops = randomOps(r, c, size, 40, true);
        List<String> qemu = qemuIo(q, ops);
        List<String> imago = new ArrayList<>();
        try (Image image = Imago.opener().path(i).format("qcow2").writable(true).open()) {
            for (Op op : ops) {
                imago.add(op.applyTo(image));
            }
        }
        String steps = "steps: " + ops.stream().map(Op::qemuIo).toList() + "\n";
        for (int k = 0; k < ops.size(); k++) {
            int step = k;
            assertEquals(qemu.get(k).equals("ok"), imago.get(k).equals("ok"), () -> steps + "step " + step + " ("
                    + ops.get(step).qemuIo() + "): qemu-io " + qemu.get(step) + ", imago " + imago.get(step));
        }
        Qemu.Output qemuCheck = Qemu.run(dir, "qemu-img", "check", q);
        assertEquals(0, qemuCheck.status(), () -> steps + "qemu-io damaged its own image:\n" + qemuCheck.out());
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", i);
        assertEquals(0, check.status(), () -> steps + "qemu-img check:\n" + check.out() + check.err());
        Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", q, i);
        assertEquals(0, cmp.status(), () -> steps + "qemu-img compare:\n" + cmp.out() + cmp.err());
        String qemuMap = Qemu.ok(dir, "qemu-img", "map", "--output=json", q);
        String imagoMap = Qemu.ok(dir, "qemu-img", "map", "--output=json", i);
        assertEquals(allocation(qemuMap), allocation(imagoMap), () -> steps + "qemu:\n" + qemuMap + "imago:\n"
                + imagoMap);
    }

    /**
     * Random steps over an image of {@code size} bytes: lengths and offsets aligned to a byte, a sector, the zero
     * unit or the cluster, some reaching the end of the image; with {@code all}, mostly zero writes (some with unmap or
     * no fallback), and discards and data writes; without, a starting point with compressed clusters.
     */
    static List<Op> randomOps(Random r, Case c, long size, int count, boolean all) {
        int cs = c.clusterSize();
        List<Op> ops = new ArrayList<>();
        for (int k = 0; k < count; k++) {
            int align = switch (r.nextInt(4)) {
                case 0 -> 1;
                case 1 -> 512;
                case 2 -> c.unit();
                default -> cs;
            };
            int length = (int) Math.min(size, Math.max(align, (1 + r.nextInt(3 * cs)) / align * align));
            long offset = r.nextInt(10) == 0 ? size - length : (long) (r.nextDouble() * (size - length + 1)) / align
                    * align;
            int pattern = 1 + r.nextInt(250);
            // in 20ths: zero writes 7, with unmap 3, with no fallback 1, discards 2, data 7; compressed writes
            // only in the starting point, as QEMU 7.2 packs a compressed write into a cluster that was freed and
            // reused meanwhile (qemu-img check: OFLAG_COPIED data cluster, refcount=2)
            int pick = r.nextInt(20);
            if (!all) {
                // a starting point: zero, compressed and (half) data clusters
                pick = pick < 5 ? 0 : pick < 10 ? 13 : 15;
            } else if (pick >= 13 && pick < 15) {
                pick = 15;
            }
            if (pick < 11) {
                Set<ZeroFlag> flags = pick < 7 ? Set.of() : pick < 10 ? Set.of(ZeroFlag.MAY_UNMAP)
                        : r.nextBoolean() ? Set.of(ZeroFlag.NO_FALLBACK)
                        : EnumSet.of(ZeroFlag.MAY_UNMAP, ZeroFlag.NO_FALLBACK);
                ops.add(new Op(Op.Kind.ZERO, offset, length, 0, flags));
            } else if (pick < 13) {
                ops.add(new Op(Op.Kind.DISCARD, offset, length, 0, Set.of()));
            } else if (pick < 15) {
                long cluster = (long) (r.nextDouble() * ((size + cs - 1) / cs)) * cs;
                ops.add(new Op(Op.Kind.COMPRESSED, cluster, (int) Math.min(cs, size - cluster), pattern, Set.of()));
            } else {
                ops.add(new Op(Op.Kind.WRITE, offset, length, pattern, Set.of()));
            }
        }
        if (!all) {
            // compressed writes first, before anything is freed (the QEMU bug above)
            ops.sort(Comparator.comparing(op -> op.kind() != Op.Kind.COMPRESSED));
        }
        return ops;
    }

    private static final Pattern OUTCOME = Pattern.compile("(?m)^(?:(?:wrote|discard) \\d+/\\d+ bytes at offset \\d+|"
            + "(?:write|discard) failed: (.*))$");

    /** Runs the steps through one qemu-io and returns each one's outcome ("ok" or "failed: why"). */
    static List<String> qemuIo(Path image, List<Op> ops) {
        List<Object> cmd = new ArrayList<>(List.of("qemu-io", "-f", "qcow2"));
        for (Op op : ops) {
            cmd.add("-c");
            cmd.add(op.qemuIo());
        }
        cmd.add(image);
        Qemu.Output o = Qemu.run(dir, cmd.toArray());
        List<String> outcomes = new ArrayList<>();
        Matcher m = OUTCOME.matcher(o.out());
        while (m.find()) {
            outcomes.add(m.group(1) == null ? "ok" : "failed: " + m.group(1));
        }
        assertEquals(ops.size(), outcomes.size(), () -> "qemu-io printed:\n" + o.out() + o.err());
        return outcomes;
    }

    /**
     * The map's allocation: for each run, its depth, whether it is present, zero or data, and whether it has a host
     * offset (host offsets themselves depend on where each implementation places clusters), adjacent equal runs
     * merged. A data run's zero bit is left out: it says whether the host file has a hole there (QEMU fills the
     * rest of a new cluster with a zeroed range where imago writes zeroes, and looks for holes only when it guesses
     * that the metadata was preallocated), which is not what the L2 entries say.
     */
    static List<String> allocation(String json) {
        List<String> out = new ArrayList<>();
        long start = 0;
        long end = 0;
        String last = null;
        for (QemuMap.Entry e : QemuMap.parse(json)) {
            String s = "depth=" + e.depth() + (e.present() ? " present" : "") + (e.data() ? " data"
                    : e.zero() ? " zero" : "") + (e.offset() >= 0 ? " host" : "");
            if (s.equals(last) && e.start() == end) {
                end += e.length();
                continue;
            }
            if (last != null) {
                out.add(start + "+" + (end - start) + " " + last);
            }
            last = s;
            start = e.start();
            end = e.start() + e.length();
        }
        if (last != null) {
            out.add(start + "+" + (end - start) + " " + last);
        }
        return out;
    }
}
