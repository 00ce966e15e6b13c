package imago.testkit;

import imago.api.Image;
import imago.api.Preallocation;
import imago.api.ZeroFlag;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * A fixed workload of writes, zero writes, discards, flushes and (for resizable formats) resizes, run on an image
 * whose disk loses power at some point, remembering what the guest was owed at that point: the content it last
 * flushed, the bytes it changed since, and the sizes the image may have.
 */
final class CrashWorkload {
    private final List<Step> steps;
    /** Whether the bytes a resize adds read as whatever the image says (not zeroes): the model takes them from it. */
    private final boolean growthUndefined;

    /** One step: {@code kind} at {@code offset} for {@code length} bytes (a resize: the requested and the virtual size). */
    private record Step(Kind kind, long offset, long length, byte fill) {
    }

    private enum Kind { WRITE, ZEROES, DISCARD, FLUSH, RESIZE }

    /** What a crash owes the guest: the content it last flushed, the bytes changed since, the sizes seen since. */
    record Owed(byte[] flushed, BitSet touched, Set<Long> sizes) {
    }

    /** How a run ended: what the crash owed (null without a crash) and the guest content at the end. */
    record Result(Owed owed, byte[] content) {
    }

    private CrashWorkload(List<Step> steps, boolean growthUndefined) {
        this.steps = steps;
        this.growthUndefined = growthUndefined;
    }

    /**
     * {@code count} random steps on an image of {@code size} bytes, clustered around {@code granularity}, with
     * resizes to sizes {@code resizes} accepts (none if it is null).
     */
    static CrashWorkload random(long seed, int count, long size, int granularity, FormatTraits resizes) {
        Random r = new Random(seed);
        Step[] out = new Step[count];
        long now = size;
        for (int i = 0; i < count; i++) {
            int k = r.nextInt(10);
            Kind kind = k < 5 ? Kind.WRITE : k < 7 ? Kind.ZEROES : k < 8 ? Kind.DISCARD
                    : k < 9 || resizes == null ? Kind.FLUSH : Kind.RESIZE;
            if (kind == Kind.RESIZE) {
                long requested = Math.max(resizes.sizeUnit(), resizes.acceptable(
                        (resizes.growsOnly() ? now : now / 2) + r.nextLong(now + 1)));
                now = resizes.virtualSize(requested);
                // the step's offset is the requested size, its length the virtual size it makes
                out[i] = new Step(kind, requested, now, (byte) 0);
                continue;
            }
            long length = Math.min(now, 1 + r.nextInt(r.nextBoolean() ? 600 : 3 * granularity));
            long offset = r.nextBoolean() ? r.nextLong(now - length + 1)
                    : Math.min(now - length, r.nextLong(now / granularity + 1) * granularity);
            out[i] = new Step(kind, offset, length, (byte) (i + 1));
        }
        return new CrashWorkload(List.of(out), resizes != null && resizes.unwrittenUndefined());
    }

    /** Runs the workload on {@code image} (of {@code initial} content) over {@code disk}, then closes the image. */
    Result run(Image image, FaultStorage disk, byte[] initial) throws IOException {
        byte[] model = initial.clone();
        byte[] flushed = model.clone();
        BitSet touched = new BitSet();
        Set<Long> sizes = new HashSet<>(Set.of((long) model.length));
        Owed owed = null;
        try (image) {
            for (Step s : steps) {
                int from = (int) s.offset();
                int to = (int) (s.offset() + s.length());
                switch (s.kind()) {
                    case WRITE -> {
                        byte[] data = new byte[(int) s.length()];
                        Arrays.fill(data, s.fill());
                        image.write(ByteBuffer.wrap(data), s.offset());
                        System.arraycopy(data, 0, model, from, data.length);
                        touched.set(from, to);
                    }
                    case ZEROES -> {
                        image.writeZeroes(s.offset(), s.length(), s.fill() % 2 == 0 ? Set.of(ZeroFlag.MAY_UNMAP)
                                : Set.of());
                        Arrays.fill(model, from, to, (byte) 0);
                        touched.set(from, to);
                    }
                    case DISCARD -> {
                        // what a discarded byte reads is the format's choice (old or zero): take what it says
                        image.discard(s.offset(), s.length());
                        ByteBuffer now = ByteBuffer.allocate((int) s.length());
                        image.read(now, s.offset());
                        System.arraycopy(now.array(), 0, model, from, now.capacity());
                        touched.set(from, to);
                    }
                    case FLUSH -> {
                        image.flush();
                        if (disk.crashed().isEmpty()) {
                            flushed = model.clone();
                            touched.clear();
                            sizes = new HashSet<>(Set.of((long) model.length));
                        }
                    }
                    case RESIZE -> {
                        int old = model.length;
                        image.resize(s.offset(), Preallocation.OFF);
                        // cut at the requested size, then zeroes up to the virtual size
                        model = Arrays.copyOf(Arrays.copyOf(model, (int) s.offset()), (int) s.length());
                        int kept = (int) Math.min(old, s.offset());
                        if (growthUndefined && model.length > kept) {
                            // the added bytes were never written: take what the image makes of them
                            ByteBuffer added = ByteBuffer.allocate(model.length - kept);
                            image.read(added, kept);
                            System.arraycopy(added.array(), 0, model, kept, added.capacity());
                        }
                        touched.set((int) Math.min(old, s.offset()), Math.max(old, model.length));
                        sizes.add((long) model.length);
                    }
                }
                if (disk.crashed().isPresent() && owed == null) {
                    owed = new Owed(flushed, (BitSet) touched.clone(), Set.copyOf(sizes));
                }
            }
        }
        if (disk.crashed().isPresent() && owed == null) {
            // the power went out in the flush that closing makes: nothing since the last flush is owed
            owed = new Owed(flushed, touched, Set.copyOf(sizes));
        }
        return new Result(owed, model);
    }

    /**
     * Asserts that {@code image}, opened from a crashed file, has a size the guest could have seen since its last
     * flush and reads every flushed byte it did not change since as flushed.
     */
    static void assertKept(Image image, Owed owed, String what) throws IOException {
        if (!owed.sizes().contains(image.size())) {
            throw new AssertionError(what + ": size " + image.size() + ", expected one of " + owed.sizes());
        }
        int n = (int) Math.min(image.size(), owed.flushed().length);
        ByteBuffer all = ByteBuffer.allocate(n);
        image.read(all, 0);
        for (int k = 0; k < n; k++) {
            if (!owed.touched().get(k) && all.get(k) != owed.flushed()[k]) {
                throw new AssertionError(what + ": byte " + k + " was flushed as " + owed.flushed()[k]
                        + " but reads " + all.get(k));
            }
        }
    }
}
