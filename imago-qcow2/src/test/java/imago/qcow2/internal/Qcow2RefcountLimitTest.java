package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.ImageLimitException;
import imago.probe.Imago;
import imago.testkit.PropertyRuns;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Refcounts at the limit of their width (issue 11, item 2): for every refcount width, one cluster's refcount is
 * set at or just below the largest value the width holds, then the same snapshots and writes run through
 * qemu-img/qemu-io on one copy and through imago on another. Both tools must succeed or refuse alike; a refusal
 * leaves imago's file exactly as it was (qemu-img leaks a new L1 table there, so the run goes on from imago's
 * file in both copies); after a success the guest content
 * and {@code qemu-img check}'s findings must be the same for both copies. 64-bit refcounts are unsigned: values
 * past {@code 2^63} are legal and {@code 2^64 - 1} is the maximum.
 */
class Qcow2RefcountLimitTest {
    @TempDir
    static Path dir;

    private static int counter;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    @Test
    void snapshotsAndWritesAtEachWidthsLimit() throws IOException {
        long seed = PropertyRuns.seed("Qcow2RefcountLimitTest");
        Random random = new Random(seed);
        int refusals = 0;
        int runs = 0;
        for (int order = 0; order <= 6; order++) {
            for (int round = 0; round < 3; round++) {
                refusals += run(order, round == 0, random, seed);
                runs++;
            }
        }
        System.out.println("Qcow2RefcountLimitTest: seed=" + seed + ", " + runs + " runs, " + refusals
                + " snapshots refused by both tools");
        // every width has a refcount at its maximum in round 0, where the first snapshot must be refused
        assertTrue(refusals >= 7, "refusals " + refusals);
    }

    /** One run; returns how many snapshots both tools refused. */
    private static int run(int order, boolean atMax, Random random, long seed) throws IOException {
        int bits = 1 << order;
        long max = bits == 64 ? -1L : (1L << bits) - 1;
        Path made = dir.resolve("made" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096,refcount_bits=" + bits,
                made, "256k");
        List<Object> io = new ArrayList<>(List.of("qemu-io", "-f", "qcow2"));
        for (int i = 0; i < 4; i++) {
            io.addAll(List.of("-c", "write -P " + (1 + random.nextInt(200)) + " " + random.nextInt(60) * 4096L
                    + " " + (1 + random.nextInt(3)) * 4096L));
        }
        io.add(made);
        Qemu.ok(dir, io.toArray());

        // the cluster to push to the limit: the first L2 table or a data cluster it points at
        List<Long> targets = referencedClusters(made);
        long target = targets.get(random.nextInt(targets.size()));
        long value = limitValue(max, bits, atMax, random);
        setRefcount(made, target, value);
        String what = "refcount_bits=" + bits + ", cluster " + target + " refcount "
                + Long.toUnsignedString(value) + ", seed " + seed;

        Path theirs = dir.resolve("q" + counter + ".qcow2");
        Path ours = dir.resolve("i" + counter + ".qcow2");
        Files.copy(made, theirs);
        Files.copy(made, ours);

        int refused = 0;
        for (String name : List.of("s1", "s2")) {
            byte[] before = Files.readAllBytes(ours);
            Qemu.Output q = Qemu.run(dir, "qemu-img", "snapshot", "-c", name, theirs);
            boolean imagoRefused;
            try (Image image = Imago.opener().path(ours).format("qcow2").writable(true).open()) {
                image.createSnapshot(name);
                imagoRefused = false;
            } catch (ImageLimitException e) {
                imagoRefused = true;
            }
            assertEquals(q.status() != 0, imagoRefused, () -> what + ", snapshot " + name + ": qemu-img said "
                    + q.status() + " " + q.err());
            if (imagoRefused) {
                refused++;
                assertEquals("qemu-img: Could not create snapshot '" + name + "': -22 (Invalid argument)\n",
                        q.err(), what);
                assertArrayEquals(before, Files.readAllBytes(ours), () -> what + ": a refused snapshot changed the file");
                // qemu-img leaked the L1 table it made; imago's copy is the state both started from
                Files.copy(ours, theirs, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
            // the same copy-on-write over the cluster at the limit, through both tools
            long guest = random.nextInt(63) * 4096L;
            int pattern = 1 + random.nextInt(250);
            Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P " + pattern + " " + guest + " 8k", theirs);
            try (Image image = Imago.opener().path(ours).format("qcow2").writable(true).open()) {
                ByteBuffer b = ByteBuffer.allocate(8192);
                java.util.Arrays.fill(b.array(), (byte) pattern);
                image.write(b, guest);
            }
            Qemu.ok(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", theirs, ours);
            assertEquals(findings(theirs), findings(ours), what);
        }
        return refused;
    }

    /** A refcount at or just below the width's maximum (never 0: the cluster is referenced). */
    private static long limitValue(long max, int bits, boolean atMax, Random random) {
        if (atMax) {
            return max;
        }
        if (bits == 64 && random.nextBoolean()) {
            // around 2^63, where a signed long would turn negative
            return Long.MAX_VALUE + random.nextInt(2);
        }
        long below = random.nextInt(3);
        return Long.compareUnsigned(below, max - 1) > 0 ? max : max - below;
    }

    /** qemu-img check's counts and messages, the same for both copies when both tools did the same. */
    private static String findings(Path image) {
        Qemu.Output o = Qemu.run(dir, "qemu-img", "check", "--output=json", image);
        return o.status() + "\n" + o.out().replace(image.toString(), "IMG").replaceAll("\"image-end-offset\": \\d+", "")
                + o.err().replace(image.toString(), "IMG");
    }

    /** The host clusters of the first L2 table and of the data clusters it points at. */
    private static List<Long> referencedClusters(Path image) throws IOException {
        try (FileChannel ch = FileChannel.open(image)) {
            ByteBuffer h = read(ch, 0, 104);
            int clusterBits = h.getInt(20);
            long l1 = h.getLong(40);
            long l2 = read(ch, l1, 8).getLong(0) & 0x00ff_ffff_ffff_fe00L;
            List<Long> out = new ArrayList<>(List.of(l2 >>> clusterBits));
            ByteBuffer entries = read(ch, l2, 1 << clusterBits);
            for (int i = 0; i < (1 << clusterBits) / 8; i++) {
                long host = entries.getLong(i * 8) & 0x00ff_ffff_ffff_fe00L;
                if (host != 0) {
                    out.add(host >>> clusterBits);
                }
            }
            return out;
        }
    }

    /** Writes {@code value} (unsigned) as the refcount of host cluster {@code cluster}. */
    private static void setRefcount(Path image, long cluster, long value) throws IOException {
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer h = read(ch, 0, 104);
            int clusterBits = h.getInt(20);
            long table = h.getLong(48);
            int order = h.getInt(96);
            long perBlock = (8L << clusterBits) >>> order;
            long block = read(ch, table + 8 * (cluster / perBlock), 8).getLong(0);
            long index = cluster % perBlock;
            int bits = 1 << order;
            if (bits < 8) {
                long at = block + index * bits / 8;
                int shift = (int) (index * bits % 8);
                int b = read(ch, at, 1).get(0) & 0xff;
                int mask = ((1 << bits) - 1) << shift;
                b = (b & ~mask) | ((int) (value << shift) & mask);
                ch.write(ByteBuffer.wrap(new byte[] {(byte) b}), at);
                return;
            }
            ByteBuffer v = ByteBuffer.allocate(bits / 8);
            for (int k = bits / 8 - 1; k >= 0; k--) {
                v.put(k, (byte) value);
                value >>>= 8;
            }
            ch.write(v, block + index * bits / 8);
        }
    }

    private static ByteBuffer read(FileChannel ch, long at, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        while (b.hasRemaining() && ch.read(b, at + b.position()) >= 0) {
            // until full or EOF
        }
        return b.flip();
    }
}
