package imago.storage.file.internal;

import static org.quicktheories.QuickTheory.qt;

import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.AlignedStorage;
import imago.api.spi.Storage;
import imago.api.spi.StorageExtent;
import imago.api.spi.StorageOptions;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Predicate;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;
import org.quicktheories.generators.Generate;
import org.quicktheories.generators.SourceDSL;

/**
 * Random sequences of read, write, writeZeroes, discard, resize and dataExtent on a {@link FileStorage},
 * compared after every step with a byte-array model. Seeded: the seed is printed and can be replayed
 * with {@code -Dimago.seed=N}; QuickTheories shrinks a failing sequence.
 */
class FileStoragePropertyTest {
    private static final int MAX_OFFSET = 192 * 1024;
    private static final int MAX_LENGTH = 64 * 1024;
    private static final int ALIGN = 4096;

    /** How the storage is opened. */
    enum Mode {
        /** Native access, buffered channel I/O. */
        NATIVE(200),
        /** Native access on a file system without zero range (like tmpfs): punch, then fallocate. */
        NO_ZERO_RANGE(100),
        /** Native access on a file system that refuses fallocate and SEEK_DATA: zero buffers. */
        NO_FALLOCATE(100),
        /** No native access: FileChannel only. */
        PORTABLE(200),
        /** O_DIRECT, behind AlignedStorage as callers use it. */
        DIRECT(60);

        final int examples;

        Mode(int examples) {
            this.examples = examples;
        }
    }

    sealed interface Op {
    }

    record Write(long offset, int length, int seed) implements Op {
    }

    record Read(long offset, int length) implements Op {
    }

    record Zero(long offset, int length, boolean mayUnmap) implements Op {
    }

    record Discard(long offset, int length) implements Op {
    }

    record Resize(long size, Preallocation preallocation) implements Op {
    }

    record Extent(long offset, int maxLength) implements Op {
    }

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(Mode.class)
    void storageBehavesLikeAByteArray(Mode mode) throws IOException {
        long seed = Long.getLong("imago.seed", System.nanoTime());
        boolean direct = mode == Mode.DIRECT && Probe.directIO(dir);
        if (mode == Mode.DIRECT && !direct) {
            System.out.println("O_DIRECT is refused in " + dir + "; DIRECT runs buffered");
        }
        Expect expect = new Expect(direct ? ALIGN : 1,
                mode != Mode.PORTABLE && mode != Mode.NO_FALLOCATE && Probe.punchHole(dir), mode != Mode.PORTABLE);
        System.out.printf("FileStoragePropertyTest %s: seed %d (replay with -Dimago.seed=%d)%n", mode, seed, seed);
        StorageOptions options = StorageOptions.createNew().withDirectIO(direct);
        List<List<Op>> shortestFailure = new ArrayList<>(List.of(List.of()));
        try {
            qt().withFixedSeed(seed).withExamples(mode.examples).withShrinkCycles(100)
                    .forAll(SourceDSL.lists().of(op()).ofSizeBetween(1, 30))
                    .checkAssert(ops -> {
                        Throwable failure = failure(mode, options, expect, ops);
                        if (failure != null) {
                            if (shortestFailure.getFirst().isEmpty() || ops.size() < shortestFailure.getFirst().size()) {
                                shortestFailure.set(0, ops);
                            }
                            throw new AssertionError(failure.getMessage(), failure);
                        }
                    });
        } catch (AssertionError e) {
            // QuickTheories shrinks the values inside a list better than the list: drop steps one by one
            List<Op> minimal = minimise(shortestFailure.getFirst(), ops -> failure(mode, options, expect, ops) != null);
            Throwable why = failure(mode, options, expect, minimal);
            AssertionError report = new AssertionError(mode + " failed with seed " + seed + " (replay with -Dimago.seed="
                    + seed + ")\nminimal sequence: " + minimal + "\n" + (why == null ? "" : why.getMessage()), why);
            report.addSuppressed(e);
            throw report;
        }
    }

    /** The failure of running {@code ops}, or {@code null} if the storage matched the model. */
    private Throwable failure(Mode mode, StorageOptions options, Expect expect, List<Op> ops) {
        try {
            run(mode, options, expect, ops);
            return null;
        } catch (AssertionError | IOException | RuntimeException e) {
            return e;
        }
    }

    /** Greedily removes single steps while the sequence still fails. */
    private static List<Op> minimise(List<Op> ops, Predicate<List<Op>> fails) {
        List<Op> current = new ArrayList<>(ops);
        boolean changed = true;
        while (changed) {
            changed = false;
            for (int i = current.size() - 1; i >= 0; i--) {
                List<Op> shorter = new ArrayList<>(current);
                shorter.remove(i);
                if (!shorter.isEmpty() && fails.test(shorter)) {
                    current = shorter;
                    changed = true;
                }
            }
        }
        return current;
    }

    /** What the storage under test is expected to do where implementations may differ. */
    record Expect(int align, boolean discardZeroes, boolean falloc) {
        long alignUp(long v) {
            return (v + align - 1) / align * align;
        }
    }

    private void run(Mode mode, StorageOptions options, Expect expect, List<Op> ops) throws IOException {
        Path file = Files.createTempFile(dir, "prop", ".img");
        Model model = new Model();
        try (FileStorage raw = FileStorage.open(StorageLocation.file(file), options, mode != Mode.PORTABLE)) {
            switch (mode) {
                case NO_ZERO_RANGE -> raw.refuse(false, true, false, false);
                case NO_FALLOCATE -> raw.refuse(true, true, true, true);
                default -> {
                }
            }
            Storage s = AlignedStorage.wrap(raw);
            int step = 0;
            for (Op op : ops) {
                String where = "step " + step + " " + op;
                apply(s, model, expect, op, where);
                check(s, model, where);
                step++;
            }
        } finally {
            Files.delete(file);
        }
    }

    private static void apply(Storage s, Model model, Expect expect, Op op, String where) throws IOException {
        switch (op) {
            case Write w -> {
                byte[] data = new byte[w.length()];
                new SplittableRandom(w.seed()).nextBytes(data);
                s.write(ByteBuffer.wrap(data), w.offset());
                model.put(w.offset(), data, expect);
            }
            case Read r -> {
                ByteBuffer dst = ByteBuffer.allocate(r.length());
                s.read(dst, r.offset());
                if (dst.hasRemaining() || !Arrays.equals(dst.array(), model.get(r.offset(), r.length()))) {
                    throw new AssertionError("read differs at " + where);
                }
            }
            case Zero z -> {
                s.writeZeroes(z.offset(), z.length(), z.mayUnmap());
                model.put(z.offset(), new byte[z.length()], expect);
            }
            case Discard d -> {
                s.discard(d.offset(), d.length());
                if (expect.discardZeroes()) {
                    // AlignedStorage passes on only the aligned interior; discard never grows the file
                    long start = expect.alignUp(d.offset());
                    long end = Math.min((d.offset() + d.length()) / expect.align() * expect.align(), model.size);
                    if (end > start) {
                        Arrays.fill(model.data, (int) start, (int) end, (byte) 0);
                    }
                }
            }
            case Resize r -> {
                if (r.preallocation() == Preallocation.FALLOC && !expect.falloc() && r.size() > model.size) {
                    try {
                        s.resize(r.size(), r.preallocation());
                        throw new AssertionError("falloc preallocation should be unsupported at " + where);
                    } catch (UnsupportedFeatureException e) {
                        return; // nothing changed
                    }
                }
                s.resize(r.size(), r.preallocation());
                model.resize(r.size());
            }
            case Extent e -> {
                StorageExtent x = s.dataExtent(e.offset(), e.maxLength());
                if (x.offset() != e.offset() || x.length() < 1 || x.length() > e.maxLength()) {
                    throw new AssertionError("bad extent " + x + " at " + where);
                }
                if (!x.data()) {
                    byte[] hole = model.get(x.offset(), (int) x.length());
                    for (byte b : hole) {
                        if (b != 0) {
                            throw new AssertionError("extent " + x + " is a hole over data at " + where);
                        }
                    }
                }
            }
        }
    }

    /** The whole storage, plus a little past its end (which must read as zeroes), against the model. */
    private static void check(Storage s, Model model, String where) throws IOException {
        if (s.size() != model.size) {
            throw new AssertionError("size " + s.size() + ", model " + model.size + " after " + where);
        }
        int length = (int) model.size + 3 * ALIGN;
        ByteBuffer all = ByteBuffer.allocate(length);
        s.read(all, 0);
        byte[] expected = model.get(0, length);
        int diff = Arrays.mismatch(all.array(), expected);
        if (diff >= 0) {
            throw new AssertionError("byte " + diff + " is " + all.array()[diff] + ", model " + expected[diff]
                    + " (size " + model.size + ") after " + where);
        }
    }

    /** The expected contents: {@code size} bytes, zero beyond. */
    static final class Model {
        byte[] data = new byte[512 * 1024];
        long size;

        void put(long offset, byte[] bytes, Expect expect) {
            if (bytes.length == 0) {
                return;
            }
            System.arraycopy(bytes, 0, data, (int) offset, bytes.length);
            // AlignedStorage writes whole blocks, so with direct I/O the file ends on a block
            size = Math.max(size, expect.alignUp(offset + bytes.length));
        }

        byte[] get(long offset, int length) {
            byte[] out = new byte[length];
            if (offset < data.length) {
                System.arraycopy(data, (int) offset, out, 0, (int) Math.min(length, data.length - offset));
            }
            return out;
        }

        void resize(long newSize) {
            if (newSize < size) {
                Arrays.fill(data, (int) newSize, (int) size, (byte) 0);
            }
            size = newSize;
        }
    }

    // ---- generators ----

    private static <T> Gen<T> weighted(List<Pair<Integer, Gen<T>>> choices) {
        return Generate.frequency(choices);
    }

    /** Offsets: anywhere, or on a block boundary (where punch-hole and O_DIRECT take other paths). */
    private static Gen<Long> offsets() {
        return weighted(List.of(
                Pair.of(2, Generate.longRange(0, MAX_OFFSET)),
                Pair.of(2, Generate.range(0, MAX_OFFSET / ALIGN).map(i -> (long) i * ALIGN)),
                Pair.of(1, Generate.longRange(0, 64))));
    }

    private static Gen<Integer> lengths() {
        return weighted(List.of(
                Pair.of(2, Generate.range(0, MAX_LENGTH)),
                Pair.of(2, Generate.range(0, MAX_LENGTH / ALIGN).map(i -> i * ALIGN)),
                Pair.of(1, Generate.range(0, 600))));
    }

    private static Gen<Op> op() {
        Gen<Op> write = offsets().zip(lengths(), Generate.range(0, Integer.MAX_VALUE),
                (o, l, seed) -> (Op) new Write(o, l, seed));
        Gen<Op> read = offsets().zip(lengths(), (o, l) -> (Op) new Read(o, l));
        Gen<Op> zero = offsets().zip(lengths(), Generate.booleans(), (o, l, u) -> (Op) new Zero(o, l, u));
        Gen<Op> discard = offsets().zip(lengths(), (o, l) -> (Op) new Discard(o, l));
        Gen<Long> sizes = weighted(List.of(
                Pair.of(2, Generate.longRange(0, MAX_OFFSET + MAX_LENGTH)),
                Pair.of(1, Generate.range(0, (MAX_OFFSET + MAX_LENGTH) / ALIGN).map(i -> (long) i * ALIGN))));
        Gen<Op> resize = sizes.zip(Generate.enumValues(Preallocation.class), (n, p) -> (Op) new Resize(n, p));
        Gen<Op> extent = offsets().zip(Generate.range(1, 2 * MAX_LENGTH), (o, l) -> (Op) new Extent(o, l));
        return weighted(List.of(
                Pair.of(6, write),
                Pair.of(2, read),
                Pair.of(3, zero),
                Pair.of(2, discard),
                Pair.of(1, resize),
                Pair.of(2, extent)));
    }
}
