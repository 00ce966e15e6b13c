package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import imago.api.Image;
import imago.nbd.NbdLocation;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A writable {@code imago nbd} (the real launcher, a process of its own) killed with SIGKILL while a client writes:
 * the image it leaves must pass {@code qemu-img check} and hold every write the client had flushed. Each round
 * restarts the server on what the last kill left, lets four client threads (one connection, requests in flight
 * together) write and zero random ranges with a FLUSH now and then, and kills the server after a random number of
 * acknowledged requests. Every 4 KiB block a request writes carries its request's id and the block's number, so the
 * image read back (by qemu-img) says which request each block holds; a block must hold the last flushed request
 * that reached it or one of the requests after that one (acknowledged or not: unflushed writes may or may not have
 * landed), never a torn mix.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class NbdKillIT {
    private static final int BLOCK = 4096;
    private static final long SIZE = 32L << 20;
    private static final int THREADS = 4;
    private static final int ROUNDS = 3;
    private static Path launcher;

    @TempDir
    Path dir;

    @BeforeAll
    static void findLauncher() {
        String root = System.getenv("IMAGO_REPO_ROOT");
        Path base = root != null ? Path.of(root) : Path.of("").toAbsolutePath().getParent();
        launcher = base.resolve("imago");
        assertTrue(Files.isExecutable(launcher), "no launcher at " + launcher);
        assertTrue(Files.exists(base.resolve("imago-cli/target/lib/.complete")), "imago-cli/target/lib is incomplete");
        Qemu.tool("qemu-img");
    }

    /** One request of a writer thread: a write ({@code id} > 0 in its blocks) or a write of zeroes. */
    private record Op(long id, long offset, int length, boolean zero) {
        /** What block {@code block} holds after this request: its id and the block's number, or 0 for zeroes. */
        long value(long block) {
            return zero ? 0 : id << 24 | block;
        }
    }

    /** A writer thread's requests in the order it sent them, and how many of the first ones a FLUSH covered. */
    private static final class Writer {
        final List<Op> ops = new ArrayList<>();
        volatile int flushed;
        volatile Throwable unexpected;
    }

    @ParameterizedTest
    @ValueSource(strings = {"qcow2", "vmdk"})
    void flushedWritesSurviveSigkill(String format) throws Exception {
        Path img = dir.resolve("k." + format);
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", format, img, Long.toString(SIZE));
        long[] blocks = new long[(int) (SIZE / BLOCK)]; // what each block holds now, by the encoding of Op.value
        Random random = new Random(format.hashCode());
        for (int round = 1; round <= ROUNDS; round++) {
            Writer[] writers = writeUntilKilled(img, format, round, random);
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", "-f", format, img);
            // leaked clusters are allowed (qemu-nbd killed alike leaks them too), corruption is not
            assertTrue(check.status() == 0 || check.status() == 3, "round " + round + ": " + check.out() + check.err());
            assertTrue(!check.out().contains("ERROR"), check.out());
            long[] now = readBlocks(img, format);
            // what the round did, for the test's output: where the kill fell
            System.out.println(format + " round " + round + ": qemu-img check status " + check.status() + ", "
                    + Arrays.stream(writers).mapToInt(w -> w.ops.size()).sum() + " requests sent, "
                    + Arrays.stream(writers).mapToInt(w -> w.flushed).sum() + " flushed");
            for (int t = 0; t < THREADS; t++) {
                verify(writers[t], blocks, now, format + " round " + round);
            }
            blocks = now;
        }
    }

    /** Serves {@code img}, writes from {@link #THREADS} threads, and kills the server after some acknowledgements. */
    private Writer[] writeUntilKilled(Path img, String format, int round, Random random) throws Exception {
        Path sock = dir.resolve("k" + round + ".sock");
        Path pid = dir.resolve("k" + round + ".pid");
        Path log = dir.resolve("nbd" + round + ".log");
        Process server = new ProcessBuilder(launcher.toString(), "nbd", "-f", format, "-k", sock.toString(),
                "--pid-file", pid.toString(), img.toString()).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        Writer[] writers = new Writer[THREADS];
        try {
            // (imago nbd writes its pid file before it binds, and the socket once it listens)
            for (int i = 0; i < 3000 && !Files.exists(sock) && server.isAlive(); i++) {
                Thread.sleep(10);
            }
            assertTrue(Files.exists(sock), () -> "the server did not start: " + read(log));
            AtomicInteger acknowledged = new AtomicInteger();
            int killAfter = 40 + random.nextInt(400);
            long[] seeds = random.longs(THREADS).toArray();
            List<Thread> threads = new ArrayList<>();
            Image export = Imago.opener().location(NbdLocation.of("nbd+unix:///?socket=" + sock)).format("raw")
                    .writable(true).open();
            try {
                for (int t = 0; t < THREADS; t++) {
                    Writer w = writers[t] = new Writer();
                    long first = (long) round << 32 | (long) t << 28;
                    Random r = new Random(seeds[t]);
                    long base = SIZE / THREADS * t;
                    threads.add(Thread.ofPlatform().start(() -> write(export, w, first, base, r, acknowledged)));
                }
                for (int i = 0; i < 6000 && acknowledged.get() < killAfter && server.isAlive(); i++) {
                    Thread.sleep(5);
                }
                assertTrue(server.isAlive(), () -> "the server died before it was killed: " + read(log));
                server.destroyForcibly(); // SIGKILL
                assertTrue(server.waitFor(30, TimeUnit.SECONDS));
                for (Thread th : threads) {
                    th.join(30_000);
                }
            } finally {
                try {
                    export.close();
                } catch (IOException e) {
                    // the server is gone
                }
            }
        } finally {
            server.destroyForcibly();
            server.waitFor(30, TimeUnit.SECONDS);
        }
        assertEquals(137, server.exitValue(), "killed by SIGKILL");
        for (Writer w : writers) {
            if (w.unexpected != null) {
                fail("the client failed before the kill", w.unexpected);
            }
            assertTrue(!w.ops.isEmpty());
        }
        return writers;
    }

    /** Writes, zeroes and flushes in its own quarter of the image until the server is gone. */
    private static void write(Image export, Writer w, long firstId, long base, Random r, AtomicInteger acked) {
        long span = SIZE / THREADS / BLOCK;
        try {
            for (long id = firstId + 1; ; id++) {
                int blocks = 1 + r.nextInt(32);
                long start = r.nextLong(span - blocks + 1);
                Op op = new Op(id, base + start * BLOCK, blocks * BLOCK, r.nextInt(8) == 0);
                synchronized (w) {
                    w.ops.add(op);
                }
                if (op.zero()) {
                    export.writeZeroes(op.offset(), op.length(), Set.of());
                } else {
                    ByteBuffer data = ByteBuffer.allocate(op.length()).order(ByteOrder.LITTLE_ENDIAN);
                    for (long b = op.offset() / BLOCK; b < (op.offset() + op.length()) / BLOCK; b++) {
                        for (int i = 0; i < BLOCK / 8; i++) {
                            data.putLong(op.value(b));
                        }
                    }
                    export.write(data.flip(), op.offset());
                }
                acked.incrementAndGet();
                if (r.nextInt(6) == 0) {
                    int done;
                    synchronized (w) {
                        done = w.ops.size();
                    }
                    export.flush();
                    w.flushed = done;
                }
            }
        } catch (IOException | RuntimeException e) {
            // the server is gone, or the client saw it go: the test checks which
            if (!(e instanceof IOException) && !(e.getCause() instanceof IOException)) {
                w.unexpected = e;
            }
        }
    }

    /**
     * Checks each block of the writer's quarter: it holds the last flushed request that reached it (what it held
     * before the round if none did) or one of the requests after the flushed ones that reached it.
     */
    private static void verify(Writer w, long[] before, long[] now, String what) {
        List<Op> ops;
        synchronized (w) {
            ops = List.copyOf(w.ops);
        }
        int flushed = w.flushed;
        long[] durable = before.clone();
        boolean[] touched = new boolean[before.length];
        for (int i = 0; i < ops.size(); i++) {
            Op op = ops.get(i);
            for (long b = op.offset() / BLOCK; b < (op.offset() + op.length()) / BLOCK; b++) {
                touched[(int) b] = true;
                if (i < flushed) {
                    durable[(int) b] = op.value(b);
                }
            }
        }
        int checked = 0;
        for (int b = 0; b < now.length; b++) {
            if (!touched[b]) {
                continue;
            }
            checked++;
            if (now[b] == durable[b]) {
                continue;
            }
            boolean later = false;
            for (int i = flushed; i < ops.size() && !later; i++) {
                Op op = ops.get(i);
                later = op.offset() <= (long) b * BLOCK && (long) b * BLOCK < op.offset() + op.length()
                        && op.value(b) == now[b];
            }
            assertTrue(later, what + ": block " + b + " holds 0x" + Long.toHexString(now[b]) + ", flushed 0x"
                    + Long.toHexString(durable[b]) + " (" + flushed + " of " + ops.size() + " requests flushed)");
        }
        assertTrue(checked > 0, what);
    }

    /** The image's blocks, each as the one long it repeats (a torn block fails), read through qemu-img. */
    private long[] readBlocks(Path img, String format) throws IOException {
        Path raw = dir.resolve("back.raw");
        Files.deleteIfExists(raw);
        Qemu.ok(dir, "qemu-img", "convert", "-f", format, "-O", "raw", img, raw);
        long[] values = new long[(int) (SIZE / BLOCK)];
        try (FileChannel ch = FileChannel.open(raw)) {
            ByteBuffer block = ByteBuffer.allocate(BLOCK).order(ByteOrder.LITTLE_ENDIAN);
            for (int b = 0; b < values.length; b++) {
                block.clear();
                while (block.hasRemaining() && ch.read(block, (long) b * BLOCK + block.position()) > 0) {
                    // reads the whole block
                }
                LongBuffer longs = block.flip().asLongBuffer();
                long v = longs.get(0);
                for (int i = 1; i < longs.limit(); i++) {
                    assertEquals(v, longs.get(i), "block " + b + " is torn");
                }
                assertTrue(v == 0 || (v & 0xFFFFFF) == b, "block " + b + " holds another block's data");
                values[b] = v;
            }
        }
        return values;
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            return e.toString();
        }
    }
}
