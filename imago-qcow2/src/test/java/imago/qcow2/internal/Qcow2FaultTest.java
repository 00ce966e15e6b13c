package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import imago.testkit.FaultStorage;
import imago.testkit.PowerLossRuns;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fault injection: the n-th storage write fails (for every n of a workload). The failed request's
 * range is undefined afterwards, everything else must read as before, and once the storage works
 * again the image must flush and close into a file that {@code qemu-img check} finds free of
 * corruption (leaks, which are harmless, are allowed only when a metadata write failed).
 */
class Qcow2FaultTest {
    @TempDir
    static Path dir;

    /** A {@link FaultStorage} that also notes when the header switches to a new refcount table. */
    static final class CrashStorage extends FaultStorage {
        int tableSwitchAt = -1;

        CrashStorage() {
            super("failing");
        }

        /** Holding {@code content}, synced. */
        CrashStorage(byte[] content) {
            super(StorageLocation.memory("failing"), content);
        }

        @Override
        public synchronized void write(ByteBuffer src, long offset) throws IOException {
            if (offset == 48 && src.remaining() == 12) {
                // the header switching to a new refcount table
                tableSwitchAt = points();
            }
            super.write(src, offset);
        }
    }

    /** The next write to lose power at: every one early on (and around a refcount table switch), then sparser. */
    static int nextCrash(int c, boolean grow, int switchAt) {
        if (c < 0) {
            return 0;
        }
        if (!grow) {
            return c < 40 ? c + 1 : c + 1 + c / 6;
        }
        if (c >= switchAt - 8 && c < switchAt + 3 || c < 8) {
            return c + 1;
        }
        int next = c + 1 + c / 2;
        return c < switchAt - 8 && next > switchAt - 8 ? switchAt - 8 : next;
    }

    /** Where the counting run's header switched to a new refcount table (-1: it did not). */
    private int switchAt = -1;
    /** Crashed files left dirty (lazy refcounts), repaired before their check. */
    private int dirtyFiles;

    /**
     * Power loss at every (sampled) write of a workload of writes, zero writes, discards and flushes:
     * the file that could be left must never be corrupt for {@code qemu-img check} (leaks are allowed).
     */
    @Test
    void powerLossNeverCorrupts() throws IOException {
        Qemu.require();
        Path basePath = dir.resolve("crash-base.raw");
        byte[] base = new byte[SIZE];
        new Random(5).nextBytes(base);
        Files.write(basePath, base);
        // an image with an internal snapshot, made by qemu
        Path snap = dir.resolve("crash-snap.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", snap, Integer.toString(SIZE));
        Qcow2DifferentialTest.qemuIo(dir, snap.toString(), "qcow2", List.of("write -P 1 0 300k",
                "write -c -P 7 320k 64k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s1", snap);
        byte[] snapBytes = Files.readAllBytes(snap);
        Path snapRaw = dir.resolve("crash-snap.raw");
        Qemu.ok(dir, "qemu-img", "convert", "-O", "raw", snap, snapRaw);
        byte[] snapContent = Files.readAllBytes(snapRaw);
        int crashPoints = 0;
        int crashedFiles = 0;
        int tornBefore = FaultStorage.tornFiles();
        for (String options : new String[] {"cluster_size=4096", "cluster_size=512,refcount_bits=2",
                "cluster_size=4096,backed", "snapshot", "cluster_size=512,refcount_bits=64,grow",
                "cluster_size=16384,extended_l2=on", "cluster_size=16384,extended_l2=on,backed",
                "cluster_size=4096,lazy_refcounts=on,backed",
                "cluster_size=16384,extended_l2=on,preallocation=metadata,backed"}) {
            boolean backed = options.endsWith(",backed");
            Path backing = backed ? basePath : null;
            boolean lazy = options.contains("lazy_refcounts=on");
            boolean withSnapshot = options.equals("snapshot");
            // a nearly full refcount table (4096 clusters): the workload makes it grow
            boolean grow = options.endsWith(",grow");
            int size = grow ? 3 << 20 : SIZE;
            byte[] prefill = new byte[size];
            byte[] prefilledImage = null;
            if (grow) {
                new Random(8).nextBytes(prefill);
                Arrays.fill(prefill, 2_010_000, size, (byte) 0);
                FaultStorage f = new FaultStorage("failing");
                new Qcow2FormatDriver().create(f, CreateOptions.builder().size(size).option("cluster_size", "512")
                        .option("refcount_bits", "64").build());
                try (Image image = open(f, true, null)) {
                    image.write(ByteBuffer.wrap(prefill, 0, 2_010_000), 0);
                }
                prefilledImage = f.content();
                assertTrue(ByteBuffer.wrap(prefilledImage).getInt(56) == 1, "the refcount table grew too early");
            }
            // the image the workload starts on, and what its guest reads then
            byte[] start = grow ? prefilledImage : withSnapshot ? snapBytes : null;
            byte[] guest = backed ? base : withSnapshot ? snapContent : prefill;
            String createOptions = withSnapshot ? "" : options.replace(",backed", "").replace(",grow", "");
            switchAt = -1;
            PowerLossRuns.Sweep sweep = PowerLossRuns.sweep(point -> nextCrash(point, grow, switchAt), point -> {
                CrashStorage s = start != null ? new CrashStorage(start) : created(size, createOptions, backing);
                s.crashAt(point, grow && point >= switchAt - 8 && point < switchAt + 3 ? 8 : 1);
                PowerLossRuns.Owed owed = new PowerLossRuns.Owed(guest);
                Random r = new Random(99);
                try (Image image = open(s, true, backing)) {
                    for (int i = 0; i < 24 && s.crashed().isEmpty(); i++) {
                        int len = 1 + r.nextInt(12_000);
                        int off = r.nextInt(size - len);
                        switch (i % 6) {
                            case 2 -> {
                                image.writeZeroes(off, len, java.util.Set.of(imago.api.ZeroFlag.MAY_UNMAP));
                                owed.changed(off, new byte[len]);
                            }
                            case 4 -> {
                                image.discard(off, len);
                                ByteBuffer now = ByteBuffer.allocate(len);
                                image.read(now, off);
                                owed.changed(off, now.array());
                            }
                            case 5 -> {
                                if (PowerLossRuns.flush(image, s)) {
                                    owed.flushed();
                                }
                            }
                            default -> {
                                byte[] data = new byte[len];
                                Arrays.fill(data, (byte) (i + 1));
                                image.write(ByteBuffer.wrap(data), off);
                                owed.changed(off, data);
                            }
                        }
                    }
                }
                if (s.crashed().isEmpty()) {
                    switchAt = s.tableSwitchAt;
                    if (grow) {
                        assertTrue(ByteBuffer.wrap(s.content()).getInt(56) > 1, "the refcount table did not grow");
                    }
                }
                return new PowerLossRuns.Run<>(s, owed);
            }, (point, variant, owed) -> {
                String what = options + ", power loss at write " + point;
                Path file = dir.resolve("crash.qcow2");
                Files.write(file, variant);
                if (dirty(variant)) {
                    // lazy refcounts: the refcounts of a dirty image are rebuilt before use, by qemu-img check -r
                    // all or by imago's writable open; both must keep every flushed byte
                    assertTrue(lazy, () -> what + ": dirty");
                    dirtyFiles++;
                    Qemu.Output repair = Qemu.run(dir, "qemu-img", "check", "-r", "all", file);
                    assertTrue(repair.status() == 0, () -> what + ": qemu-img check -r all status " + repair.status()
                            + "\n" + repair.out() + repair.err());
                    owed.assertKept(what + ", repaired by qemu", read(Files.readAllBytes(file), backing, size));
                    variant = repairByOpening(variant);
                    Files.write(file, variant);
                }
                assertConsistent(what, file);
                if (withSnapshot) {
                    Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=s1", "-O", "raw", file, "crash-s1.raw");
                    assertArrayEquals(snapContent, Files.readAllBytes(dir.resolve("crash-s1.raw")),
                            "snapshot after power loss at write " + point);
                }
                owed.assertKept(what, read(variant, backing, size));
            });
            crashPoints += sweep.crashPoints();
            crashedFiles += sweep.crashFiles();
            assertTrue(sweep.crashPoints() >= (grow ? 15 : 40), "only " + sweep.crashPoints() + " losses checked");
        }
        // every crashed file passed qemu-img check (leaks allowed) and kept every flushed byte
        System.out.println("Qcow2FaultTest: " + crashPoints + " crash points, " + crashedFiles
                + " crashed files checked (" + (FaultStorage.tornFiles() - tornBefore) + " with a torn write, "
                + dirtyFiles + " dirty ones repaired), 0 corruptions");
        assertTrue(dirtyFiles > 10, "only " + dirtyFiles + " dirty files");
    }

    /**
     * A synced {@link CrashStorage} holding a new image of {@code size} bytes made with qemu-img's {@code options},
     * over the raw file {@code base} (null: none), named as in its directory.
     */
    static CrashStorage created(long size, String options, Path base) throws IOException {
        CrashStorage s = new CrashStorage();
        CreateOptions.Builder b = CreateOptions.builder().size(size);
        Qcow2CreateTest.parse(options).forEach(b::option);
        if (base != null) {
            b.backingFile(base.getFileName().toString()).backingFormat("raw");
        }
        new Qcow2FormatDriver().create(s, b.build());
        s.sync();
        return s;
    }

    /** The image on {@code s}, over the raw file {@code base} (null: none). */
    static Image open(Storage s, boolean writable, Path base) throws IOException {
        LayeredImage.Builder b = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s,
                OpenContext.of(writable)), s).writable(writable);
        if (base != null) {
            b.backing(imago.probe.Imago.opener().path(base).format("raw").open(), true);
        }
        return b.build();
    }

    /** The first {@code length} bytes the guest reads of the qcow2 {@code file} over the raw file {@code base}. */
    static byte[] read(byte[] file, Path base, int length) throws IOException {
        BytesStorage crashed = new BytesStorage("crash", file);
        try (Image image = open(crashed, false, base)) {
            ByteBuffer all = ByteBuffer.allocate(length);
            image.read(all, 0);
            return all.array();
        }
    }

    /** {@code qemu-img check} finds {@code file} free of corruption (leaks, which are harmless, are allowed). */
    static void assertConsistent(String what, Path file) throws IOException {
        Qemu.Output check = Qemu.run(file.getParent(), "qemu-img", "check", file);
        assertTrue(check.status() == 0 || check.status() == 3, () -> what + ": qemu-img check status "
                + check.status() + "\n" + check.out() + check.err());
    }

    /** Whether the header's dirty bit (lazy refcounts in use) is set: version 3 only. */
    static boolean dirty(byte[] file) {
        ByteBuffer h = ByteBuffer.wrap(file);
        return h.getInt(4) >= 3 && (h.getLong(72) & Qcow2Header.INCOMPAT_DIRTY) != 0;
    }

    /** The file after imago's writable open (which repairs a dirty image) and close. */
    static byte[] repairByOpening(byte[] file) throws IOException {
        FaultStorage s = new FaultStorage("failing");
        s.write(ByteBuffer.wrap(file), 0);
        new Qcow2FormatDriver().open(s, OpenContext.of(true)).close();
        byte[] out = s.content();
        assertTrue(!dirty(out), "still dirty after a writable open");
        return out;
    }

    /** Bytes the guest flushed and did not change since read as flushed. */
    static void assertFlushedKept(String what, byte[] file, Path base, byte[] flushed, boolean[] touched)
            throws IOException {
        PowerLossRuns.Owed.assertKept(what, read(file, base, flushed.length), flushed, touched);
    }

    /**
     * Power loss at every (sampled) write of a workload of compressed writes (packed, from several runs),
     * overwrites of compressed clusters, flushes, a shrink and a growth with metadata preallocation: the
     * file that could be left must never be corrupt for {@code qemu-img check} (leaks are allowed).
     */
    @Test
    void powerLossDuringCompressedWritesShrinkAndPreallocationNeverCorrupts() throws IOException {
        Qemu.require();
        for (String options : new String[] {"cluster_size=4096", "cluster_size=512,refcount_bits=1"}) {
            int cs = options.contains("512") ? 512 : 4096;
            PowerLossRuns.Sweep sweep = PowerLossRuns.sweep(point -> nextCrash(point, false, -1), point -> {
                CrashStorage s = created(SIZE, options, null);
                s.crashAt(point, 1);
                Random r = new Random(17);
                try (Image image = open(s, true, null)) {
                    for (int i = 0; i < 40; i++) {
                        byte[] data = new byte[cs];
                        for (int k = 0; k < cs; k++) {
                            data[k] = (byte) ('a' + r.nextInt(i % 3 == 0 ? 2 : 30));
                        }
                        long off = (long) (i * 7 % (SIZE / cs)) * cs;
                        if (image.mapping(off, cs) instanceof imago.api.Mapping.Unallocated) {
                            image.writeCompressed(ByteBuffer.wrap(data), off);
                        } else {
                            image.write(ByteBuffer.wrap(data, 0, cs / 2), off + cs / 4);
                        }
                        if (i % 10 == 9) {
                            image.flush();
                        }
                    }
                    image.resize(SIZE / 2 + 1024, Preallocation.OFF);
                    image.resize(SIZE, Preallocation.METADATA);
                    image.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), SIZE - 3);
                }
                return new PowerLossRuns.Run<>(s, null);
            }, (point, crashed, none) -> {
                Path file = dir.resolve("crash-c.qcow2");
                Files.write(file, crashed);
                assertConsistent(options + ", power loss at write " + point, file);
            });
            assertTrue(sweep.crashPoints() >= 40, "only " + sweep.crashPoints() + " losses checked");
        }
    }

    /**
     * Power loss while an L1 table, a snapshot's L1 copy and the refcount table run over many refcount blocks
     * (512-byte clusters with 64-bit refcounts: one block covers 64 clusters): every file that could be left is
     * clean but for leaks (and COPIED flags a cut snapshot creation leaves, as QEMU's), and the data flushed before
     * keeps reading as it was.
     */
    @Test
    void powerLossWhileTablesRunOverManyRefcountBlocks() throws IOException {
        Qemu.require();
        int size = 8 << 20;
        byte[] prefill = new byte[size];
        new Random(23).nextBytes(prefill);
        FaultStorage f = new FaultStorage("failing");
        new Qcow2FormatDriver().create(f, CreateOptions.builder().size(size).option("cluster_size", "512")
                .option("refcount_bits", "64").build());
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(f, OpenContext.of(true)), f)
                .writable(true).build()) {
            image.write(ByteBuffer.wrap(prefill, 0, 100_000), 0);
        }
        byte[] prefilledImage = f.content();
        int total = Integer.MAX_VALUE;
        int runs = 0;
        for (int crashAt = -1; crashAt < total; crashAt = crashAt < 30 ? crashAt + 1 : crashAt + 1 + crashAt / 3,
                runs++) {
            CrashStorage s = new CrashStorage();
            s.write(ByteBuffer.wrap(prefilledImage), 0);
            s.sync();
            s.crashAt(crashAt, 1);
            try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                    .writable(true).build()) {
                // a 512-cluster L1 table, a snapshot with its copy, then a 4096-cluster L1 table and a larger refcount
                // table
                image.resize(1L << 30, Preallocation.OFF);
                // (what follows a crash only costs time)
                if (s.crashed().isEmpty()) {
                    image.createSnapshot("s");
                }
                if (s.crashed().isEmpty()) {
                    image.resize(8L << 30, Preallocation.OFF);
                }
            }
            if (s.crashed().isEmpty()) {
                total = s.points();
                assertTrue(ByteBuffer.wrap(s.content()).getInt(56) > 1, "the refcount table did not grow");
                continue;
            }
            Path file = dir.resolve("crash-long.qcow2");
            Files.write(file, s.crashed().orElseThrow());
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", file);
            int at = crashAt;
            String report = check.out() + check.err();
            // leaks, and (creating the snapshot) COPIED flags that disagree with refcounts, as after a crash of QEMU
            for (String line : report.lines().toList()) {
                assertTrue(!line.startsWith("ERROR") || line.startsWith("ERROR OFLAG_COPIED"), () -> "power loss at "
                        + "write " + at + ": qemu-img check status " + check.status() + "\n" + report);
            }
            assertTrue(check.status() == 0 || check.status() == 3 || report.contains("ERROR OFLAG_COPIED"),
                    () -> "power loss at write " + at + ": qemu-img check status " + check.status() + "\n" + report);
            BytesStorage crashed = new BytesStorage("crash", s.crashed().orElseThrow());
            try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(crashed,
                    OpenContext.of(false)), crashed).build()) {
                ByteBuffer head = ByteBuffer.allocate(100_000);
                image.read(head, 0);
                assertArrayEquals(Arrays.copyOf(prefill, 100_000), head.array(), "power loss at write " + at);
            }
        }
        System.out.println("Qcow2FaultTest: " + runs + " runs over " + total + " writes with long tables");
        assertTrue(runs > 30, "only " + runs + " runs");
    }

    /**
     * A write failing at each point of growing an L1 table and the refcount table over many refcount blocks
     * (512-byte clusters, 64-bit refcounts): the grow fails or succeeds as a whole, the image stays consistent
     * (leaks at most), keeps its data, and can grow afterwards.
     */
    @Test
    void everyFailingWriteWhileTablesRunOverManyRefcountBlocks() throws IOException {
        Qemu.require();
        byte[] prefill = new byte[100_000];
        new Random(29).nextBytes(prefill);
        FaultStorage f = new FaultStorage("failing");
        new Qcow2FormatDriver().create(f, CreateOptions.builder().size(8 << 20).option("cluster_size", "512")
                .option("refcount_bits", "64").build());
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(f, OpenContext.of(true)), f)
                .writable(true).build()) {
            image.write(ByteBuffer.wrap(prefill), 0);
        }
        byte[] start = f.content();
        int runs = 0;
        for (int failAt = 0; ; failAt++, runs++) {
            FaultStorage s = new FaultStorage("failing");
            s.write(ByteBuffer.wrap(start), 0);
            boolean failed = false;
            try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)),
                    s).writable(true).build()) {
                s.failAfter(failAt);
                long before = image.size();
                try {
                    image.resize(8L << 30, Preallocation.OFF);
                } catch (IOException e) {
                    failed = true;
                    assertTrue(image.size() == before, "the size changed although growing failed");
                }
                s.heal();
                if (failed) {
                    image.resize(4L << 30, Preallocation.OFF);
                }
                ByteBuffer head = ByteBuffer.allocate(prefill.length);
                image.read(head, 0);
                assertArrayEquals(prefill, head.array(), "fail at write " + failAt);
            }
            Path file = dir.resolve("fault-long.qcow2");
            Files.write(file, s.content());
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", file);
            int at = failAt;
            assertTrue(check.status() == 0 || check.status() == 3 && failed, () -> "fail at write " + at
                    + ": qemu-img check status " + check.status() + "\n" + check.out() + check.err());
            if (!failed) {
                break;
            }
        }
        assertTrue(runs > 10, "only " + runs + " runs");
    }

    /**
     * Power loss while growing an image over a longer backing file: the file left is never corrupt, and
     * whatever size its header has, the area past the old size never shows the backing file's data.
     */
    @Test
    void powerLossWhileGrowingOverALongerBackingFileNeverShowsIt() throws IOException {
        Qemu.require();
        Path base = dir.resolve("grow-fault-base.raw");
        byte[] below = new byte[4 * SIZE];
        Arrays.fill(below, (byte) 0x5a);
        Files.write(base, below);
        long oldSize = SIZE / 2 + 1536; // inside a cluster and (32 KiB clusters) inside a subcluster
        for (String options : new String[] {"cluster_size=4096", "cluster_size=32768,extended_l2=on"}) {
            PowerLossRuns.Sweep sweep = PowerLossRuns.sweep(point -> nextCrash(point, false, -1), point -> {
                CrashStorage s = created(oldSize, options, base);
                s.crashAt(point, 1);
                Qcow2Instance layer = (Qcow2Instance) new Qcow2FormatDriver().open(s, OpenContext.of(true));
                layer.checkBacking(imago.api.spi.BackingFacts.ofSize("raw", below.length));
                Image backing = imago.probe.Imago.opener().path(base).format("raw").open();
                try (Image image = LayeredImage.builder("qcow2", layer, s).writable(true).backing(backing, true)
                        .build()) {
                    image.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), oldSize - 3);
                    image.flush();
                    image.resize(3L * SIZE, Preallocation.OFF);
                    image.write(ByteBuffer.wrap(new byte[] {4, 5, 6}), 3L * SIZE - 3);
                }
                return new PowerLossRuns.Run<>(s, null);
            }, (point, crashed, none) -> {
                Path file = dir.resolve("crash-g.qcow2");
                Files.write(file, crashed);
                assertConsistent(options + ", power loss at write " + point, file);
                try (Image image = imago.probe.Imago.opener().path(file).format("qcow2").open()) {
                    long end = Math.min(image.size(), 3L * SIZE - 3);
                    ByteBuffer grown = ByteBuffer.allocate((int) (end - oldSize));
                    image.read(grown, oldSize);
                    for (byte x : grown.array()) {
                        if (x != 0) {
                            throw new AssertionError(options + ", power loss at write " + point + ": size "
                                    + image.size() + " shows the backing file past the old size");
                        }
                    }
                }
            });
            assertTrue(sweep.crashPoints() >= 10, "only " + sweep.crashPoints() + " losses checked");
        }
    }

    static final int SIZE = 512 << 10;

    /** Runs the workload with the {@code failAt}-th write failing; returns false once no write failed. */
    static boolean run(int failAt, String options, boolean zeroes) throws IOException {
        FaultStorage s = new FaultStorage("failing");
        CreateOptions.Builder b = CreateOptions.builder().size(SIZE);
        Qcow2CreateTest.parse(options).forEach(b::option);
        new Qcow2FormatDriver().create(s, b.build());
        byte[] model = new byte[SIZE];
        boolean failed;
        boolean closeFailed = false;
        Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                .writable(true).build();
        try {
            failed = workload(image, s, failAt, zeroes, model);
        } finally {
            try {
                image.close();
            } catch (IOException e) {
                // the flush in close hit the injected failure: what is on the storage must still be consistent
                if (!s.failing()) {
                    throw e;
                }
                failed = true;
                closeFailed = true;
            }
        }
        Path file = dir.resolve("fault.qcow2");
        byte[] content = s.content();
        if (dirty(content)) {
            // lazy refcounts: a close that failed leaves the image dirty, for the next writable open to repair
            assertTrue(closeFailed, "fail at write " + failAt + ": dirty after a clean close");
            s.heal();
            content = repairByOpening(content);
        }
        Files.write(file, content);
        boolean anyFailure = failed;
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", file);
        assertTrue(check.status() == 0 || check.status() == 3 && anyFailure,
                () -> "fail at write " + failAt + ": qemu-img check status " + check.status() + "\n" + check.out()
                        + check.err());
        if (closeFailed) {
            // metadata is cached write-back: when the final flush fails, writes since the last successful
            // flush may be lost (never the image's consistency, checked above)
            return true;
        }
        Files.write(dir.resolve("fault.raw"), model);
        Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", file, "fault.raw");
        assertTrue(cmp.status() == 0, () -> "fail at write " + failAt + ": " + cmp.out() + cmp.err());
        return failed;
    }

    private static boolean workload(Image image, FaultStorage s, int failAt, boolean zeroes, byte[] model)
            throws IOException {
        Random r = new Random(42);
        boolean failed = false;
        {
            s.failAfter(failAt);
            for (int i = 0; i < 24; i++) {
                int len = 1 + r.nextInt(12_000);
                int off = r.nextInt(SIZE - len);
                byte[] data = new byte[len];
                Arrays.fill(data, (byte) (i + 1));
                boolean zero = zeroes && i % 3 == 2;
                try {
                    if (zero) {
                        image.writeZeroes(off, len, java.util.Set.of(imago.api.ZeroFlag.MAY_UNMAP));
                    } else if (zeroes && i % 7 == 6) {
                        image.discard(off, len);
                        // the model cannot know which clusters a discard drops: treat the whole range as unknown
                        ByteBuffer now = ByteBuffer.allocate(len);
                        image.read(now, off);
                        System.arraycopy(now.array(), 0, model, off, len);
                        continue;
                    } else {
                        image.write(ByteBuffer.wrap(data), off);
                    }
                    System.arraycopy(zero ? new byte[len] : data, 0, model, off, len);
                } catch (IOException e) {
                    failed = true;
                    s.heal();
                    // the failed range is undefined: take what the image now says there
                    ByteBuffer now = ByteBuffer.allocate(len);
                    image.read(now, off);
                    System.arraycopy(now.array(), 0, model, off, len);
                    ByteBuffer all = ByteBuffer.allocate(SIZE);
                    image.read(all, 0);
                    assertArrayEquals(model, all.array(), "after failing write " + failAt);
                }
            }
            ByteBuffer all = ByteBuffer.allocate(SIZE);
            image.read(all, 0);
            assertArrayEquals(model, all.array());
        }
        return failed;
    }

    @Test
    void everyFailingWriteLeavesAConsistentImage() throws IOException {
        Qemu.require();
        for (String options : new String[] {"cluster_size=4096", "cluster_size=512,refcount_bits=2",
            "cluster_size=16384,extended_l2=on", "cluster_size=4096,lazy_refcounts=on"}) {
            for (boolean zeroes : new boolean[] {false, true}) {
                int n = 0;
                int runs = 0;
                // every one of the first writes, then a sample (the workload makes hundreds of writes)
                while (run(n, options, zeroes)) {
                    n += n < 30 ? 1 : 1 + n / 8;
                    runs++;
                }
                assertTrue(runs > 30, "only " + runs + " runs");
            }
        }
    }

    /** The guest-visible state: the active content and each snapshot's, by name. */
    record SnapState(byte[] active, java.util.Map<String, byte[]> snapshots) {
        SnapState with(byte[] newActive, java.util.Map<String, byte[]> newSnapshots) {
            return new SnapState(newActive, java.util.Map.copyOf(newSnapshots));
        }
    }

    /**
     * Power loss at every write and sync of snapshot create, apply and delete (and the writes between them). A
     * qcow2 refcount and the COPIED flag of the entry that counts it cannot change together, so qemu-img check may
     * report OFLAG_COPIED mismatches (as after a crash of qemu itself) and leaks, but nothing else; once repaired
     * ({@code qemu-img check -r all}), every snapshot the table lists reads as it was taken, and the active image
     * reads as before or after the operation that was cut.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"cluster_size=4096", "cluster_size=512,refcount_bits=16"})
    void powerLossDuringSnapshotOperations(String options) throws IOException {
        Qemu.require();
        Path made = dir.resolve("snapops.qcow2");
        Files.deleteIfExists(made);
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", options, made, Integer.toString(SIZE));
        Qcow2DifferentialTest.qemuIo(dir, made.toString(), "qcow2", List.of("write -P 1 0 300k",
                "write -c -P 7 320k 64k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s0", made);
        byte[] start = Files.readAllBytes(made);
        Path raw = dir.resolve("snapops.raw");
        Qemu.ok(dir, "qemu-img", "convert", "-O", "raw", made, raw);
        byte[] content = Files.readAllBytes(raw);
        List<String> ops = List.of("create a", "write", "apply s0", "create b", "write", "delete a", "apply b",
                "delete s0", "write");
        // the states after each operation (states.get(0) is the start)
        List<SnapState> states = new java.util.ArrayList<>();
        states.add(new SnapState(content, java.util.Map.of("s0", content)));
        for (String op : ops) {
            SnapState prev = states.getLast();
            java.util.Map<String, byte[]> snaps = new java.util.HashMap<>(prev.snapshots());
            byte[] active = prev.active();
            String[] w = op.split(" ");
            switch (w[0]) {
                case "create" -> snaps.put(w[1], active);
                case "apply" -> active = snaps.get(w[1]);
                case "delete" -> snaps.remove(w[1]);
                default -> {
                    active = active.clone();
                    Arrays.fill(active, states.size() * 9000, states.size() * 9000 + 70_000, (byte) states.size());
                }
            }
            states.add(prev.with(active, snaps));
        }
        int total = Integer.MAX_VALUE;
        int[] opStart = new int[ops.size()];
        int runs = 0;
        // every write with 4 KiB clusters; with 512-byte clusters (many L1 entries, many more writes) every 5th
        int stride = options.contains("cluster_size=512") ? 5 : 1;
        for (int crashAt = -1; crashAt < total; crashAt = crashAt < 0 ? 0 : crashAt + stride, runs++) {
            CrashStorage s = new CrashStorage();
            s.write(ByteBuffer.wrap(start), 0);
            s.sync();
            s.crashAt(crashAt, 2);
            try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                    .writable(true).build()) {
                for (int j = 0; j < ops.size(); j++) {
                    opStart[j] = s.points();
                    String[] w = ops.get(j).split(" ");
                    switch (w[0]) {
                        case "create" -> image.createSnapshot(w[1]);
                        case "apply" -> image.applySnapshot(w[1]);
                        case "delete" -> image.deleteSnapshot(w[1]);
                        default -> {
                            byte[] data = new byte[70_000];
                            Arrays.fill(data, (byte) (j + 1));
                            image.write(ByteBuffer.wrap(data), (j + 1) * 9000L);
                            image.flush();
                        }
                    }
                }
            }
            if (s.crashed().isEmpty()) {
                total = s.points();
                assertArrayEquals(states.getLast().active(), readActive(s.content()), "no crash");
                continue;
            }
            int op = 0;
            while (op + 1 < ops.size() && opStart[op + 1] <= crashAt) {
                op++;
            }
            SnapState before = states.get(op);
            SnapState after = states.get(op + 1);
            for (int v = 0; v < s.crashFiles().size(); v++) {
            String what = options + ", power loss at write " + crashAt + " during '" + ops.get(op) + "' (variant " + v
                    + ")";
            Path file = dir.resolve("snapcrash.qcow2");
            Files.write(file, s.crashFiles().get(v));
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", file);
            String report = check.out() + check.err();
            for (String line : report.lines().toList()) {
                assertTrue(!line.startsWith("ERROR") || line.startsWith("ERROR OFLAG_COPIED"), () -> what + ":\n"
                        + report);
            }
            Qemu.Output repair = Qemu.run(dir, "qemu-img", "check", "-r", "all", file);
            assertTrue(repair.status() == 0, () -> what + ": repair\n" + repair.out() + repair.err());
            String list = Qemu.ok(dir, "qemu-img", "snapshot", "-l", file);
            List<String> names = list.lines().skip(2).map(l -> l.trim().split("\\s+")[1]).toList();
            java.util.Set<String> listed = java.util.Set.copyOf(names);
            assertTrue(listed.size() == names.size() && (listed.equals(before.snapshots().keySet())
                    || listed.equals(after.snapshots().keySet())), () -> what + ": snapshots " + names);
            for (String name : names) {
                byte[] expected = before.snapshots().containsKey(name) ? before.snapshots().get(name)
                        : after.snapshots().get(name);
                Path out = dir.resolve("snapcrash.raw");
                Files.deleteIfExists(out);
                Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=" + name, "-O", "raw", file, out);
                assertArrayEquals(expected, Files.readAllBytes(out), what + ": snapshot " + name);
            }
            // what a guest write that was cut before its flush wrote is undefined (as in qemu); every other byte
            // reads as before or after the operation
            byte[] active = readActive(Files.readAllBytes(file));
            boolean guestWrite = ops.get(op).equals("write");
            for (int k = 0; k < active.length; k++) {
                if (guestWrite && k >= (op + 1) * 9000 && k < (op + 1) * 9000 + 70_000) {
                    continue;
                }
                if (active[k] != before.active()[k] && active[k] != after.active()[k]) {
                    throw new AssertionError(what + ": byte " + k + " reads " + active[k] + ", neither as before ("
                            + before.active()[k] + ") nor as after (" + after.active()[k] + ")");
                }
            }
            }
        }
        assertTrue(runs > 100, "only " + runs + " runs");
    }

    private static byte[] readActive(byte[] file) throws IOException {
        BytesStorage st = new BytesStorage("snapcrash", file);
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(st, OpenContext.of(false)), st)
                .build()) {
            ByteBuffer all = ByteBuffer.allocate((int) image.size());
            image.read(all, 0);
            return all.array();
        }
    }
}
