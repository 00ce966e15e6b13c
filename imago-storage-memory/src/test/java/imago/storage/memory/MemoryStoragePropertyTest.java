package imago.storage.memory;

import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.lists;

import imago.api.Preallocation;
import imago.api.spi.StorageExtent;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;
import org.quicktheories.generators.Generate;

/**
 * Random operation sequences on a memory storage with 16-byte chunks, so that nearly every request
 * crosses chunk boundaries, against a model of both the bytes and the set of allocated chunks. Prints
 * its seed; {@code -Dimago.seed=N} replays one.
 */
class MemoryStoragePropertyTest {
    private static final int CHUNK = 16;
    private static final int MAX = 40 * CHUNK;

    sealed interface Op {
        record Write(int offset, int length, int seed) implements Op { }
        record Zero(int offset, int length, boolean unmap) implements Op { }
        record Discard(int offset, int length) implements Op { }
        record Resize(int size, Preallocation mode) implements Op { }
        record Read(int offset, int length) implements Op { }
    }

    /** The model: bytes (zero past the size) and the chunks that hold memory. */
    private static final class Model {
        byte[] bytes = new byte[0];
        final BitSet chunks = new BitSet();

        long size() {
            return bytes.length;
        }

        void ensure(int end) {
            if (end > bytes.length) {
                bytes = Arrays.copyOf(bytes, end);
            }
        }

        void allocate(int from, int to) {
            if (from < to) {
                chunks.set(from / CHUNK, (to - 1) / CHUNK + 1);
            }
        }

        void dropWhole(int from, int to) {
            int first = (from + CHUNK - 1) / CHUNK;
            int end = to / CHUNK;
            if (first < end) {
                chunks.clear(first, end);
            }
        }

        byte at(long i) {
            return i < bytes.length ? bytes[(int) i] : 0;
        }
    }

    private static Gen<Integer> offsets() {
        return Generate.frequency(List.of(Pair.of(3, integers().between(0, MAX)),
                Pair.of(2, integers().between(0, MAX / CHUNK).map(i -> i * CHUNK))));
    }

    private static Gen<Integer> lengths() {
        return Generate.frequency(List.of(Pair.of(3, integers().between(0, 3 * CHUNK)),
                Pair.of(1, integers().between(0, 6).map(i -> i * CHUNK)), Pair.of(1, integers().between(0, MAX))));
    }

    private static Gen<Op> ops() {
        Gen<Op> write = offsets().zip(lengths(), integers().all(), (o, l, s) -> new Op.Write(o, l, s));
        Gen<Op> zero = offsets().zip(lengths(), Generate.booleans(), (o, l, u) -> new Op.Zero(o, l, u));
        Gen<Op> discard = offsets().zip(lengths(), (o, l) -> new Op.Discard(o, l));
        Gen<Op> resize = offsets().zip(Generate.enumValues(Preallocation.class), (s, m) -> new Op.Resize(s, m));
        Gen<Op> read = offsets().zip(lengths(), (o, l) -> new Op.Read(o, l));
        return Generate.frequency(List.of(Pair.of(4, write), Pair.of(2, zero), Pair.of(2, discard), Pair.of(1, resize),
                Pair.of(3, read)));
    }

    @Test
    void randomOperationSequencesMatchTheModel() {
        long seed = seed();
        try {
            qt().withFixedSeed(seed).withExamples(Integer.getInteger("imago.examples", 1000)).withShrinkCycles(5000)
                    .forAll(lists().of(ops()).ofSizeBetween(1, 40))
                    .checkAssert(MemoryStoragePropertyTest::run);
        } catch (AssertionError e) {
            throw new AssertionError("seed " + seed + " (replay with -Dimago.seed=" + seed + "): " + e.getMessage(), e);
        }
    }

    private static long seed() {
        String given = System.getProperty("imago.seed");
        long seed = given != null ? Long.decode(given) : new Random().nextLong();
        System.out.println("MemoryStoragePropertyTest seed: " + seed + " (replay with -Dimago.seed=" + seed + ")");
        return seed;
    }

    private static void run(List<Op> ops) {
        String name = "memory-property-" + Thread.currentThread().threadId();
        MemoryStorage s = MemoryStorage.create(name, CHUNK);
        try {
            Model m = new Model();
            for (int step = 0; step < ops.size(); step++) {
                apply(s, m, ops.get(step), step);
                check(s, m, ops.get(step), step);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            MemoryStorage.delete(name);
        }
    }

    private static void apply(MemoryStorage s, Model m, Op op, int step) throws IOException {
        switch (op) {
            case Op.Write w -> {
                byte[] data = new byte[w.length()];
                new Random(w.seed()).nextBytes(data);
                s.write(ByteBuffer.wrap(data), w.offset());
                if (w.length() > 0) {
                    m.ensure(w.offset() + w.length());
                    System.arraycopy(data, 0, m.bytes, w.offset(), w.length());
                    m.allocate(w.offset(), w.offset() + w.length());
                }
            }
            case Op.Zero z -> {
                s.writeZeroes(z.offset(), z.length(), z.unmap());
                if (z.length() > 0) {
                    m.ensure(z.offset() + z.length());
                    Arrays.fill(m.bytes, z.offset(), z.offset() + z.length(), (byte) 0);
                    if (z.unmap()) {
                        m.dropWhole(z.offset(), z.offset() + z.length());
                    }
                }
            }
            case Op.Discard d -> {
                s.discard(d.offset(), d.length());
                int end = (int) Math.min(m.size(), d.offset() + d.length());
                if (d.offset() < end) {
                    Arrays.fill(m.bytes, d.offset(), end, (byte) 0);
                }
                m.dropWhole(d.offset(), d.offset() + d.length());
            }
            case Op.Resize r -> {
                int old = m.bytes.length;
                s.resize(r.size(), r.mode());
                m.bytes = Arrays.copyOf(m.bytes, r.size());
                if (r.size() < old) {
                    m.chunks.clear((r.size() + CHUNK - 1) / CHUNK, Integer.MAX_VALUE);
                } else if (r.mode() == Preallocation.FULL || r.mode() == Preallocation.FALLOC) {
                    m.allocate(old, r.size());
                }
            }
            case Op.Read r -> {
                ByteBuffer b = ByteBuffer.allocate(r.length());
                s.read(b, r.offset());
                for (int i = 0; i < r.length(); i++) {
                    if (b.get(i) != m.at(r.offset() + i)) {
                        throw new AssertionError("step " + step + " " + op + ": byte " + (r.offset() + i)
                                + " reads " + b.get(i) + ", model says " + m.at(r.offset() + i));
                    }
                }
            }
        }
    }

    /** After every step: size, allocation, every byte, and the data/hole runs against the model. */
    private static void check(MemoryStorage s, Model m, Op op, int step) throws IOException {
        String where = "after step " + step + " " + op + ": ";
        if (s.size() != m.size()) {
            throw new AssertionError(where + "size " + s.size() + ", model " + m.size());
        }
        if (s.allocatedSize().getAsLong() != (long) m.chunks.cardinality() * CHUNK) {
            throw new AssertionError(where + "allocated " + s.allocatedSize().getAsLong() + ", model chunks "
                    + m.chunks);
        }
        byte[] all = new byte[m.bytes.length + CHUNK];
        s.read(ByteBuffer.wrap(all), 0);
        if (!Arrays.equals(Arrays.copyOf(m.bytes, all.length), all)) {
            throw new AssertionError(where + "content differs at byte "
                    + Arrays.mismatch(Arrays.copyOf(m.bytes, all.length), all));
        }
        long pos = 0;
        while (pos < m.size()) {
            StorageExtent e = s.dataExtent(pos, m.size() - pos);
            if (e.offset() != pos || e.length() < 1 || e.offset() + e.length() > m.size()) {
                throw new AssertionError(where + "bad extent " + e + " at " + pos);
            }
            for (long i = pos; i < pos + e.length(); i++) {
                if (m.chunks.get((int) (i / CHUNK)) != e.data()) {
                    throw new AssertionError(where + "extent " + e + " disagrees with chunk " + i / CHUNK);
                }
            }
            pos += e.length();
        }
    }
}
