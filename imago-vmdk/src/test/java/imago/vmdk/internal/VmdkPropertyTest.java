package imago.vmdk.internal;

import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.lists;
import static org.quicktheories.generators.SourceDSL.longs;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.StorageLocation;
import imago.api.ZeroFlag;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import imago.testkit.PropertyRuns;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;
import org.quicktheories.generators.Generate;

/**
 * Random write/read/writeZeroes/flush/reopen sequences on created vmdk images (sparse with and without zeroed-grain
 * entries, flat, split, a delta disk over a parent), in memory, against a byte-array model. {@code -Dimago.seed=N}
 * replays a run.
 */
class VmdkPropertyTest {
    private static final int GRAIN = 64 << 10;
    private static final AtomicInteger NAMES = new AtomicInteger();

    sealed interface Op {
        record Read(long offset, long length) implements Op { }

        record Write(long offset, long length, long seed) implements Op { }

        record Zeroes(long offset, long length) implements Op { }

        record Flush() implements Op { }

        record Reopen() implements Op { }
    }

    /** Which image to start from. */
    enum Kind { SPARSE, ZEROED_GRAIN, FLAT, SPLIT_SPARSE, DELTA }

    record Scenario(Kind kind, long size, long seed, List<Op> ops) {
        List<Scenario> withFewerSteps() {
            List<Scenario> out = new ArrayList<>();
            int n = ops.size();
            for (int block = Math.max(1, n / 2); n > 0; block /= 2) {
                for (int start = 0; start + block <= n; start += block) {
                    List<Op> rest = new ArrayList<>(ops.subList(0, start));
                    rest.addAll(ops.subList(start + block, n));
                    out.add(new Scenario(kind, size, seed, List.copyOf(rest)));
                }
                if (block == 1) {
                    break;
                }
            }
            return out;
        }
    }

    static Gen<Long> offsets(long max) {
        Gen<Long> nearGrain = longs().between(0, max / GRAIN).zip(integers().between(-700, 700),
                (g, d) -> Math.max(0, g * GRAIN + d));
        return Generate.frequency(List.of(Pair.of(2, longs().between(0, max)), Pair.of(3, nearGrain),
                Pair.of(1, longs().between(0, max / GRAIN).map(g -> g * GRAIN))));
    }

    static Gen<Long> lengths() {
        return Generate.frequency(List.of(Pair.of(3, longs().between(0, 1500)), Pair.of(3, longs().between(0, 70_000)),
                Pair.of(2, longs().between(1, 4).map(n -> n * GRAIN)), Pair.of(1, longs().between(0, 400_000))));
    }

    static Gen<Op> ops(long max) {
        Gen<Op> read = offsets(max).zip(lengths(), Op.Read::new);
        Gen<Op> write = offsets(max).zip(lengths(), longs().all(), Op.Write::new);
        Gen<Op> zeroes = offsets(max).zip(lengths(), Op.Zeroes::new);
        return Generate.frequency(List.of(Pair.of(3, read), Pair.of(6, write), Pair.of(2, zeroes),
                Pair.of(1, Generate.constant(new Op.Flush())), Pair.of(1, Generate.constant(new Op.Reopen()))));
    }

    static Gen<Scenario> scenarios(int maxOps) {
        long max = 1_300_000;
        Gen<Long> sizes = Generate.frequency(List.of(Pair.of(2, longs().between(1, max / 512).map(s -> s * 512)),
                Pair.of(1, longs().between(1, max / GRAIN).map(g -> g * GRAIN))));
        return Generate.enumValues(Kind.class).zip(sizes, longs().all(), (k, s, seed) -> new Object[] {k, s, seed})
                .zip(lists().of(ops(max)).ofSizeBetween(1, maxOps),
                        (a, o) -> new Scenario((Kind) a[0], (Long) a[1], (Long) a[2], o));
    }

    @Test
    void randomOperationSequencesMatchTheModel() {
        PropertyRuns.check("VmdkPropertyTest", 300, scenarios(30), VmdkPropertyTest::run, Scenario::withFewerSteps);
    }

    static void run(Scenario s) {
        String name = "vmdk-prop-" + NAMES.incrementAndGet();
        List<String> created = new ArrayList<>();
        try {
            byte[] model = new byte[(int) s.size()];
            CreateOptions.Builder o = CreateOptions.builder().size(s.size());
            switch (s.kind()) {
                case SPARSE -> { }
                case ZEROED_GRAIN -> o.option("zeroed_grain", "on");
                case FLAT -> o.option("subformat", "monolithicFlat");
                case SPLIT_SPARSE -> o.option("subformat", "twoGbMaxExtentSparse");
                case DELTA -> {
                    String parent = name + "-parent.vmdk";
                    Imago.create(StorageLocation.memory(parent), "vmdk", CreateOptions.ofSize(s.size()));
                    created.add(parent);
                    new SplittableRandom(s.seed()).nextBytes(model);
                    try (Image p = open(parent, true)) {
                        p.write(ByteBuffer.wrap(model), 0);
                    }
                    o.backingFile(parent).backingFormat("vmdk");
                }
            }
            String image = name + ".vmdk";
            Imago.create(StorageLocation.memory(image), "vmdk", o.build());
            created.add(image);
            created.addAll(List.of(name + "-flat.vmdk", name + "-s001.vmdk"));
            Image img = open(image, true);
            try {
                for (int i = 0; i < s.ops().size(); i++) {
                    Op op = s.ops().get(i);
                    img = step(img, image, op, model, "step " + i + " " + op);
                }
                check(img, model, 0, model.length, "at the end");
            } finally {
                img.close();
            }
            try (Image reopened = open(image, false)) {
                check(reopened, model, 0, model.length, "reopened at the end");
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            created.forEach(MemoryStorage::delete);
        }
    }

    private static Image open(String name, boolean writable) throws IOException {
        return Imago.opener().location(StorageLocation.memory(name)).writable(writable).open();
    }

    private static Image step(Image image, String name, Op op, byte[] model, String where) throws IOException {
        int size = model.length;
        switch (op) {
            case Op.Read r -> {
                long[] at = fit(r.offset(), r.length(), size);
                check(image, model, (int) at[0], (int) at[1], where);
            }
            case Op.Write w -> {
                long[] at = fit(w.offset(), w.length(), size);
                byte[] d = new byte[(int) at[1]];
                new SplittableRandom(w.seed()).nextBytes(d);
                image.write(ByteBuffer.wrap(d), at[0]);
                System.arraycopy(d, 0, model, (int) at[0], d.length);
            }
            case Op.Zeroes z -> {
                long[] at = fit(z.offset(), z.length(), size);
                image.writeZeroes(at[0], at[1], Set.of(ZeroFlag.MAY_UNMAP));
                Arrays.fill(model, (int) at[0], (int) (at[0] + at[1]), (byte) 0);
            }
            case Op.Flush f -> image.flush();
            case Op.Reopen r -> {
                image.close();
                return open(name, true);
            }
        }
        return image;
    }

    private static long[] fit(long offset, long length, long size) {
        long off = offset % (size + 1);
        return new long[] {off, Math.min(length, size - off)};
    }

    static void check(Image image, byte[] model, int off, int len, String where) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len);
        image.read(b, off);
        int diff = Arrays.mismatch(b.array(), 0, len, model, off, off + len);
        if (diff >= 0) {
            throw new AssertionError(where + ": guest byte " + (off + diff) + " reads " + b.get(diff) + ", expected "
                    + model[off + diff]);
        }
    }
}
