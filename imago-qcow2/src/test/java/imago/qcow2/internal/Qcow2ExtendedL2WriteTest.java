package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.Image;
import imago.api.ZeroFlag;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuMap;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Writes, zero writes and discards on images with extended L2 entries (subclusters): against a byte-array
 * model (discards included: with extended L2 entries QEMU makes every whole discarded cluster read as zero),
 * then {@code qemu-img check} and {@code compare}; and the same operations through qemu-io and imago on two
 * copies of one image must give the same {@code qemu-img map}.
 */
class Qcow2ExtendedL2WriteTest {
    @TempDir
    static Path dir;

    static int counter;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /**
     * One layout.
     *
     * @param clusterSize the cluster size (subclusters are 1/32 of it)
     * @param backing whether the image has a raw backing file with random content
     * @param ops how many random operations
     */
    record Case(int clusterSize, boolean backing, int ops) {
        @Override
        public String toString() {
            return "cluster_size=" + clusterSize + (backing ? " backed" : "");
        }
    }

    static Stream<Case> cases() {
        return Stream.of(new Case(16384, false, 300), new Case(16384, true, 300), new Case(65536, false, 150),
                new Case(65536, true, 150), new Case(2 << 20, true, 40), new Case(2 << 20, false, 40));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void randomWritesZeroesAndDiscards(Case c) throws IOException {
        long seed = Long.getLong("imago.seed", new Random().nextLong());
        System.out.println("Qcow2ExtendedL2WriteTest " + c + " seed: " + seed);
        Random r = new Random(seed);
        int cs = c.clusterSize();
        int sub = cs / 32;
        long size = 24L * cs + 1536;
        Path img = dir.resolve("x" + counter++ + ".qcow2");
        byte[] model = Qcow2WriteTest.create(img, new Qcow2WriteTest.Case("extended_l2=on,cluster_size=" + cs,
                size, c.backing(), 0, 0), r);
        for (int session = 0; session < 2; session++) {
            try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
                for (int i = 0; i < c.ops(); i++) {
                    int length = 1 + r.nextInt(switch (r.nextInt(3)) {
                        case 0 -> sub * 3;
                        case 1 -> cs * 2;
                        default -> cs * 5;
                    });
                    if (r.nextBoolean()) {
                        // subcluster or cluster aligned requests, which zeroing and discard handle with metadata
                        int unit = r.nextBoolean() ? sub : cs;
                        length = Math.max(unit, length / unit * unit);
                    }
                    length = (int) Math.min(length, size);
                    long offset = (long) (r.nextDouble() * (size - length + 1));
                    if (r.nextBoolean()) {
                        int unit = r.nextBoolean() ? sub : cs;
                        offset = offset / unit * unit;
                    }
                    apply(image, model, r.nextInt(5), offset, length, cs, r);
                    if (i % 25 == 0) {
                        Qcow2WriteTest.assertReads(image, model);
                    }
                    if (i % 40 == 39) {
                        image.flush();
                    }
                }
                Qcow2WriteTest.assertReads(image, model);
            }
            verify(img, model);
        }
    }

    /** qemu-img check clean (no leaks), compare equal to the model, and imago reads the model after reopening. */
    static void verify(Path img, byte[] model) throws IOException {
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", img);
        assertEquals(0, check.status(), () -> "qemu-img check:\n" + check.out() + check.err());
        Qcow2WriteTest.assertReadsModel(img, model);
    }

    /** One operation on the image and the model: 0-1 write, 2 zero write, 3 zero write with unmap, 4 discard. */
    private static void apply(Image image, byte[] model, int op, long offset, int length, int cs, Random r)
            throws IOException {
        switch (op) {
            case 2, 3 -> {
                image.writeZeroes(offset, length, op == 3 ? Set.of(ZeroFlag.MAY_UNMAP) : Set.of());
                Arrays.fill(model, (int) offset, (int) offset + length, (byte) 0);
            }
            case 4 -> {
                image.discard(offset, length);
                // whole clusters (and the partial last one, when the request reaches the end) read as zero
                long first = (offset + cs - 1) / cs * cs;
                long end = offset + length == model.length ? model.length : (offset + length) / cs * cs;
                if (first < end) {
                    Arrays.fill(model, (int) first, (int) end, (byte) 0);
                }
            }
            default -> Qcow2WriteTest.write(image, model, offset, length, r);
        }
    }

    /** The same operations through qemu-io and imago give the same content and the same allocation. */
    @ParameterizedTest(name = "backing={0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void allocationMatchesQemu(boolean backing) throws IOException {
        String n = "m" + counter++;
        Path base = dir.resolve(n + ".base.qcow2");
        List<Object> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2", "-o",
                "cluster_size=65536,extended_l2=on"));
        if (backing) {
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", base, "2M");
            Qcow2DifferentialTest.qemuIo(dir, base.toString(), "qcow2", List.of("write -P 9 0 2M"));
            create.addAll(List.of("-b", base.getFileName().toString(), "-F", "qcow2"));
        }
        Path q = dir.resolve(n + ".qemu.qcow2");
        Path i = dir.resolve(n + ".imago.qcow2");
        create.addAll(List.of(q, "2M"));
        Qemu.ok(dir, create.toArray());
        // a starting point written by qemu: one full cluster and a few subclusters
        Qcow2DifferentialTest.qemuIo(dir, q.toString(), "qcow2", List.of("write -P 1 256k 64k",
                "write -P 1 384k 4k", "write -P 1 448k 2k"));
        Files.copy(q, i, StandardCopyOption.REPLACE_EXISTING);
        List<String> ops = List.of(
                "write -P 2 3000 100",          // head and tail of one subcluster of a new cluster
                "write -P 3 10000 5000",         // in place: new subclusters of our cluster
                "write -P 4 2100 200",           // in place: an allocated subcluster
                "write -P 5 70000 10",
                "write -z 20480 8192",           // zero subclusters of our cluster
                "write -z -u 24576 2048",
                "write -z 131072 65536",         // a whole cluster without host cluster
                "write -z 196608 65536",
                "write -z 262144 65536",         // a whole cluster of ours: keeps the host cluster
                "write -z -u 385024 4096",       // subclusters of a cluster of ours
                "write -P 6 386000 3000",        // writes over zero subclusters of our cluster
                "discard 327680 65536",          // an unallocated cluster
                "write -z -u 393216 65536",      // a whole cluster of ours, unmapped
                "discard 458752 65536",          // a whole cluster of ours with one subcluster
                "discard 520000 1000",           // partial: ignored
                "write -P 7 600000 200000",      // several clusters
                "discard 655360 131072",         // whole clusters of ours
                "write -P 8 1000000 70000",
                "write -z 1010000 40000",        // unaligned head and tail: explicit zeroes there
                "write -z 900100 3000",          // unaligned, unallocated: zero subclusters unless backed
                "write -z 263000 100",           // inside a zero subcluster
                "write -z 1048576 1048576");     // the rest
        sameAsQemu(q, i, ops);
    }

    /**
     * Writes into a cluster shared with a snapshot (copied from its first to its last allocated subcluster)
     * and into a compressed cluster (rewritten whole) leave what qemu-io leaves.
     */
    @Test
    void sharedAndCompressedClustersMatchQemu() throws IOException {
        String n = "s" + counter++;
        Path q = dir.resolve(n + ".qemu.qcow2");
        Path i = dir.resolve(n + ".imago.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", q, "1M");
        Qcow2DifferentialTest.qemuIo(dir, q.toString(), "qcow2", List.of("write -P 1 4096 2048",
                "write -P 1 20000 3000", "write -z 40960 4096", "write -P 1 200k 64k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "snap", q);
        Files.copy(q, i, StandardCopyOption.REPLACE_EXISTING);
        sameAsQemu(q, i, List.of("write -P 3 30000 100", "write -P 4 65536 65536", "write -z 204800 4096"));

        Path raw = dir.resolve(n + ".raw");
        Files.write(raw, Qcow2WriteTest.filled(5, 1 << 20));
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", "extended_l2=on", raw, q);
        Files.copy(q, i, StandardCopyOption.REPLACE_EXISTING);
        // zeroing part of a compressed cluster rewrites it with explicit zeroes, an unaligned head first
        sameAsQemu(q, i, List.of("write -P 2 70000 100", "write -z 131072 65536", "write -z -u 262144 65536",
                "discard 393216 65536", "write -z 458752 4096", "write -z 524388 8000", "write -z 600000 100"));
    }

    /** Random writes, zero writes and discards through qemu-io and imago leave the same map. */
    @ParameterizedTest(name = "backing={0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void randomOperationsMapAsQemu(boolean backing) throws IOException {
        long seed = Long.getLong("imago.seed", new Random().nextLong());
        System.out.println("Qcow2ExtendedL2WriteTest random map backing=" + backing + " seed: " + seed);
        Random r = new Random(seed);
        String n = "rm" + counter++;
        Path base = dir.resolve(n + ".base.qcow2");
        int size = 2 << 20;
        int cs = 65536;
        int sub = cs / 32;
        List<Object> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2", "-o",
                "cluster_size=" + cs + ",extended_l2=on"));
        if (backing) {
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", base, size);
            Qcow2DifferentialTest.qemuIo(dir, base.toString(), "qcow2", List.of("write -P 9 0 " + size));
            create.addAll(List.of("-b", base.getFileName().toString(), "-F", "qcow2"));
        }
        Path q = dir.resolve(n + ".qemu.qcow2");
        Path i = dir.resolve(n + ".imago.qcow2");
        create.addAll(List.of(q, size));
        Qemu.ok(dir, create.toArray());
        Files.copy(q, i, StandardCopyOption.REPLACE_EXISTING);
        List<String> ops = new ArrayList<>();
        for (int k = 0; k < 80; k++) {
            int unit = switch (r.nextInt(3)) {
                case 0 -> 1;
                case 1 -> sub;
                default -> cs;
            };
            int len = Math.max(unit, (1 + r.nextInt(3 * cs)) / unit * unit);
            int off = r.nextInt(size - len + 1) / unit * unit;
            ops.add(switch (r.nextInt(5)) {
                case 0 -> "write -z " + off + " " + len;
                case 1 -> "write -z -u " + off + " " + len;
                case 2 -> "discard " + off + " " + len;
                default -> "write -P " + (1 + r.nextInt(200)) + " " + off + " " + len;
            });
        }
        sameAsQemu(q, i, ops);
    }

    /**
     * Runs qemu-io commands ({@code write -P}, {@code write -z [-u]}, {@code discard}) through qemu-io on
     * {@code q} and through imago on {@code i}; then {@code i} must be clean, equal to {@code q}, and map alike.
     */
    private static void sameAsQemu(Path q, Path i, List<String> ops) throws IOException {
        Qcow2DifferentialTest.qemuIo(dir, q.toString(), "qcow2", ops);
        try (Image image = Imago.opener().path(i).format("qcow2").writable(true).open()) {
            for (String op : ops) {
                String[] w = op.trim().split("\\s+");
                long off = Long.parseLong(w[w.length - 2]);
                int len = Integer.parseInt(w[w.length - 1]);
                if (w[0].equals("discard")) {
                    image.discard(off, len);
                } else if (w[1].equals("-z")) {
                    image.writeZeroes(off, len, w[2].equals("-u") ? Set.of(ZeroFlag.MAY_UNMAP) : Set.of());
                } else {
                    byte[] data = new byte[len];
                    Arrays.fill(data, (byte) Integer.parseInt(w[2]));
                    image.write(ByteBuffer.wrap(data), off);
                }
            }
        }
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", i);
        assertEquals(0, check.status(), () -> "qemu-img check:\n" + check.out() + check.err());
        Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", q, i);
        assertEquals(0, cmp.status(), () -> "qemu-img compare:\n" + cmp.out() + cmp.err());
        String qemuMap = Qemu.ok(dir, "qemu-img", "map", "--output=json", q);
        String imagoMap = Qemu.ok(dir, "qemu-img", "map", "--output=json", i);
        assertEquals(shape(qemuMap), shape(imagoMap), () -> "qemu:\n" + qemuMap + "imago:\n" + imagoMap);
    }

    /**
     * The map without host offsets (which depend on allocation order): depth, present, zero, data and whether
     * a host offset is there, for each run, adjacent equal runs merged.
     */
    static List<String> shape(String json) {
        List<String> out = new ArrayList<>();
        long runStart = 0;
        long runEnd = 0;
        String last = null;
        for (QemuMap.Entry e : QemuMap.parse(json)) {
            String s = "depth=" + e.depth() + " present=" + e.present() + " zero=" + e.zero() + " data=" + e.data()
                    + " host=" + (e.offset() >= 0);
            if (s.equals(last) && e.start() == runEnd) {
                runEnd += e.length();
                continue;
            }
            if (last != null) {
                out.add(runStart + "+" + (runEnd - runStart) + " " + last);
            }
            last = s;
            runStart = e.start();
            runEnd = e.start() + e.length();
        }
        if (last != null) {
            out.add(runStart + "+" + (runEnd - runStart) + " " + last);
        }
        return out;
    }

    /** With an external data file (raw or not), the clusters sit at their guest offsets: same map as qemu-io's. */
    @ParameterizedTest(name = "raw={0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void externalDataFilesMatchQemu(boolean raw) throws IOException {
        String n = "e" + counter++;
        Path q = dir.resolve(n + ".qemu.qcow2");
        Path i = dir.resolve(n + ".imago.qcow2");
        for (Path p : List.of(q, i)) {
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,data_file=" + p.getFileName()
                    + ".data" + (raw ? ",data_file_raw=on" : ""), p, "1M");
        }
        sameAsQemu(q, i, List.of("write -P 1 3000 100", "write -z 8192 4096", "write -P 2 0 2048",
                "write -z -u 65536 65536", "write -P 3 131072 4096", "discard 131072 65536", "write -P 4 200000 300000",
                "write -z 250000 10000", "write -z 262144 65536"));
        if (raw) {
            // a raw data file is the guest's bytes
            Path content = dir.resolve(n + ".content.raw");
            Qemu.ok(dir, "qemu-img", "convert", "-O", "raw", q, content);
            org.junit.jupiter.api.Assertions.assertArrayEquals(Files.readAllBytes(content),
                    Arrays.copyOf(Files.readAllBytes(dir.resolve(i.getFileName() + ".data")), 1 << 20));
        }
    }

    /** Growing an image whose last subcluster reaches past the old end: those bytes read as zero. */
    @Test
    void resizeGrows() throws IOException {
        Path img = dir.resolve("g" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", img, "3072");
        byte[] model = new byte[1 << 20];
        Random r = new Random(17);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            Qcow2WriteTest.write(image, model, 2100, 972, r);
            image.resize(1 << 20, imago.api.Preallocation.OFF);
            Qcow2WriteTest.write(image, model, 4000, 70_000, r);
            image.writeZeroes(200_000, 5000, Set.of());
            Qcow2WriteTest.assertReads(image, model);
        }
        verify(img, model);
    }

    @Test
    void writesKeepQemuReadable() throws IOException {
        // qemu-io reads back what imago wrote into subclusters, pattern by pattern
        Path img = dir.resolve("r" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=16384,extended_l2=on", img, "1M");
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            image.write(ByteBuffer.wrap(Qcow2WriteTest.filled(0x31, 700)), 1000);
            image.write(ByteBuffer.wrap(Qcow2WriteTest.filled(0x32, 512)), 2048);
            image.writeZeroes(1024, 512, Set.of());
        }
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("read -P 0x31 1000 24",
                "read -P 0 1024 512", "read -P 0x31 1536 164", "read -P 0 1700 348", "read -P 0x32 2048 512",
                "read -P 0 2560 1045944"));
        String map = Qemu.ok(dir, "qemu-img", "map", "--output=json", img);
        List<String> shape = shape(map);
        assertEquals(List.of("0+512 depth=0 present=false zero=true data=false host=true",
                "512+512 depth=0 present=true zero=false data=true host=true",
                "1024+512 depth=0 present=true zero=true data=false host=true",
                "1536+1024 depth=0 present=true zero=false data=true host=true",
                "2560+13824 depth=0 present=false zero=true data=false host=true",
                "16384+1032192 depth=0 present=false zero=true data=false host=false"), shape, map);
    }
}
