package imago.cow.internal;

import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.lists;
import static org.quicktheories.generators.SourceDSL.longs;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ZeroFlag;
import imago.storage.memory.MemoryStorage;
import imago.testkit.PropertyRuns;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;
import org.quicktheories.generators.Generate;

/**
 * Random write/read/writeZeroes/discard/flush/reopen sequences on cow images of every variant over a
 * raw backing image, against a byte-array model. {@code -Dimago.seed=N} replays a run.
 */
class CowPropertyTest {
    /** Past the first 512-byte sector of QEMU's bitmap (its byte 480 covers guest 1.875 MiB). */
    private static final long MAX_SIZE = 2_200_000;
    private static final long BITMAP_SECTOR_EDGE = 3840L * 512;

    sealed interface Op {
        record Read(long offset, long length) implements Op { }

        record Write(long offset, long length, long seed) implements Op { }

        record Zeroes(long offset, long length, boolean mayUnmap) implements Op { }

        record Discard(long offset, long length) implements Op { }

        record Flush() implements Op { }

        record Reopen() implements Op { }
    }

    /** An image of {@code variant} and {@code size}, made by create ({@code created}) or by the struct writer. */
    record Scenario(CowVariant variant, long size, boolean created, long seed, List<Op> ops) {
        List<Scenario> withFewerSteps() {
            return PropertyRuns.withoutBlocks(ops).stream()
                    .map(rest -> new Scenario(variant, size, created, seed, rest)).toList();
        }
    }

    static Gen<Long> offsets() {
        Gen<Long> nearBitmapByte = longs().between(0, MAX_SIZE / 4096)
                .zip(integers().between(-600, 600), (u, d) -> Math.max(0, u * 4096 + d));
        Gen<Long> nearBitmapSector = integers().between(-5000, 5000).map(d -> BITMAP_SECTOR_EDGE + d);
        return Generate.frequency(List.of(Pair.of(2, longs().between(0, MAX_SIZE)),
                Pair.of(2, longs().between(0, MAX_SIZE / 512).map(s -> s * 512)), Pair.of(3, nearBitmapByte),
                Pair.of(1, nearBitmapSector)));
    }

    static Gen<Long> lengths() {
        return Generate.frequency(List.of(Pair.of(3, longs().between(0, 600)), Pair.of(3, longs().between(0, 9000)),
                Pair.of(1, longs().between(0, 300_000))));
    }

    static Gen<Op> ops() {
        Gen<Op> read = offsets().zip(lengths(), Op.Read::new);
        Gen<Op> write = offsets().zip(lengths(), longs().all(), Op.Write::new);
        Gen<Op> zeroes = offsets().zip(lengths(), Generate.booleans(), Op.Zeroes::new);
        Gen<Op> discard = offsets().zip(lengths(), Op.Discard::new);
        return Generate.frequency(List.of(Pair.of(3, read), Pair.of(6, write), Pair.of(2, zeroes), Pair.of(1, discard),
                Pair.of(1, Generate.constant(new Op.Flush())), Pair.of(1, Generate.constant(new Op.Reopen()))));
    }

    static Gen<Long> sizes() {
        return Generate.frequency(List.of(Pair.of(2, longs().between(1, 70_000)), Pair.of(1, longs().between(1, MAX_SIZE)),
                Pair.of(1, longs().between(1, MAX_SIZE / 4096).map(u -> u * 4096))));
    }

    static Gen<Scenario> scenarios(int maxOps) {
        return Generate.enumValues(CowVariant.class).zip(sizes(), Generate.booleans(), longs().all(),
                (v, s, c, seed) -> new Object[] {v, s, c, seed})
                .zip(lists().of(ops()).ofSizeBetween(1, maxOps),
                        (a, o) -> new Scenario((CowVariant) a[0], (Long) a[1], (Boolean) a[2], (Long) a[3], o));
    }

    @Test
    void randomOperationSequencesMatchTheModel() {
        PropertyRuns.check("CowPropertyTest", 500, scenarios(40), CowPropertyTest::run, Scenario::withFewerSteps);
    }

    static void run(Scenario s) {
        boolean qemu = s.variant() == CowVariant.QEMU_V2 || s.variant() == CowVariant.QEMU_V2_32BIT;
        long size = qemu ? CowImages.roundUp(s.size(), 512) : s.size();
        SplittableRandom r = new SplittableRandom(s.seed());
        String base = CowTestSupport.name("prop-base");
        String name = CowTestSupport.name("prop");
        // a backing image shorter or longer than the overlay
        byte[] backing = CowTestSupport.random(r, (int) Math.max(0, size + r.nextInt(-3000, 3000)));
        CowTestSupport.backing(base, backing);
        try {
            byte[] model;
            CowImages.Spec spec = CowImages.Spec.of(s.variant(), base, size);
            boolean create = s.created() && (s.variant() == CowVariant.QEMU_V2 || s.variant() == CowVariant.UML_V3);
            if (create) {
                try (MemoryStorage st = MemoryStorage.create(name)) {
                    new CowFormatDriver().create(st, CreateOptions.builder().size(size).backingFile(base)
                            .option("variant", qemu ? "qemu" : "uml-v3").build());
                }
                model = CowTestSupport.expected(spec, new BitSet(), new byte[0], backing);
            } else {
                BitSet present = CowTestSupport.randomBits(r, spec.bitCapacity());
                model = CowTestSupport.cow(name, spec, present, CowTestSupport.random(r, (int) size), backing);
            }
            long writable = spec.bitCapacity() * spec.sectorSize(); // UML v1/v2 may lack a last bit
            Image image = CowTestSupport.open(name, true);
            try {
                for (int i = 0; i < s.ops().size(); i++) {
                    Op op = s.ops().get(i);
                    String where = "step " + i + " " + op;
                    image = step(image, name, op, model, Math.min(size, writable), where);
                }
                check(image, model, 0, model.length, "at the end");
            } finally {
                image.close();
            }
            try (Image reopened = CowTestSupport.open(name, false)) {
                check(reopened, model, 0, model.length, "reopened at the end");
            }
            CowWriteTest.checkDiskBitmapConsistent(name, spec, model, backing);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            MemoryStorage.delete(name);
            MemoryStorage.delete(base);
        }
    }

    private static Image step(Image image, String name, Op op, byte[] model, long writeLimit, String where)
            throws IOException {
        int size = model.length;
        switch (op) {
            case Op.Read r -> {
                long[] at = fit(r.offset(), r.length(), size);
                check(image, model, (int) at[0], (int) at[1], where);
            }
            case Op.Write w -> {
                long[] at = fit(w.offset(), w.length(), writeLimit);
                byte[] d = new byte[(int) at[1]];
                new SplittableRandom(w.seed()).nextBytes(d);
                image.write(ByteBuffer.wrap(d), at[0]);
                System.arraycopy(d, 0, model, (int) at[0], d.length);
            }
            case Op.Zeroes z -> {
                long[] at = fit(z.offset(), z.length(), writeLimit);
                image.writeZeroes(at[0], at[1], z.mayUnmap() ? Set.of(ZeroFlag.MAY_UNMAP) : Set.of());
                Arrays.fill(model, (int) at[0], (int) (at[0] + at[1]), (byte) 0);
            }
            case Op.Discard d -> {
                long[] at = fit(d.offset(), d.length(), size);
                image.discard(at[0], at[1]);
            }
            case Op.Flush f -> image.flush();
            case Op.Reopen r -> {
                image.close();
                return CowTestSupport.open(name, true);
            }
        }
        return image;
    }

    private static long[] fit(long offset, long length, long size) {
        long off = offset % (size + 1);
        return new long[] {off, Math.min(length, size - off)};
    }

    private static void check(Image image, byte[] model, int off, int len, String where) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len);
        image.read(b, off);
        int diff = Arrays.mismatch(b.array(), 0, len, model, off, off + len);
        if (diff >= 0) {
            throw new AssertionError(where + ": guest byte " + (off + diff) + " reads " + b.get(diff) + ", expected "
                    + model[off + diff]);
        }
    }
}
