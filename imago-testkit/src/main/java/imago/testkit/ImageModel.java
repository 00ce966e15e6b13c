package imago.testkit;

import imago.api.Extent;
import imago.api.Image;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ZeroFlag;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.LongUnaryOperator;

/**
 * The expected guest content of an {@link Image} as a byte array, and a checker that runs
 * {@link ImageOp}s on the image and the model side by side, comparing every read, every mapping and
 * the size after every step, and the whole content after resizes, reopens and at the end. Format-independent:
 * an image without a backing file starts as zeroes (an {@link Mapping.Unallocated} run must read zeroes), one
 * over a backing file as the backing file's content.
 *
 * <p>A requested size (at creation, in a resize) becomes the virtual size the format makes of it, e.g.
 * rounded up to whole sectors; what lies between the two reads as zeroes.
 *
 * <p>What a discarded range reads afterwards depends on the format and storage; with
 * {@link DiscardSemantics#ZEROES_OR_OLD}, each discarded byte may read either its old value or zero,
 * and the first answer the image gives pins it.
 */
public final class ImageModel {

    /** What a discarded range may read afterwards. */
    public enum DiscardSemantics {
        /** Exactly zeroes (memory storage, or any storage that punches holes). */
        ZEROES,
        /** Each byte its old value or zero. */
        ZEROES_OR_OLD
    }

    private final DiscardSemantics discard;
    private final LongUnaryOperator virtualSize;
    private boolean refusePreallocatedShrink;
    private boolean refuseShrink;
    private byte[] bytes;
    /** Bytes that may read as zero instead of {@link #bytes}: discarded and not observed since. */
    private final BitSet maybeZero = new BitSet();
    /** The granule a write-once image takes each of once, whole; 0 for an image that takes any write. */
    private int writeOnceGranule;
    /** The granules of a write-once image written. */
    private final BitSet writtenGranules = new BitSet();
    /** Whether the bytes a resize adds may read as anything. */
    private boolean growthUndefined;
    /** Bytes that may read as anything: never written, and not observed since (the first read pins them). */
    private final BitSet undefined = new BitSet();

    /**
     * A model of an image created with {@code size} bytes, all zero.
     *
     * @param virtualSize the virtual size the format gives an image created or resized to a size
     */
    public ImageModel(long size, DiscardSemantics discard, LongUnaryOperator virtualSize) {
        this(new byte[Math.toIntExact(virtualSize.applyAsLong(size))], discard, virtualSize);
    }

    /**
     * A model of an image that reads {@code initial} (e.g. its backing file's content) at the start.
     *
     * @param virtualSize the virtual size the format gives an image resized to a size
     */
    public ImageModel(byte[] initial, DiscardSemantics discard, LongUnaryOperator virtualSize) {
        this.virtualSize = virtualSize;
        this.bytes = initial.clone();
        this.discard = discard;
    }

    /**
     * Makes the image write-once ({@link Layout#writingOnce()}): a write or zero write takes granules of {@code granule}
     * bytes in order while each is written whole (the last one up to the end of the image) and never was; it must be
     * refused with an {@link imago.api.UnsupportedFeatureException} of {@link imago.api.Feature#OVERWRITES} at the
     * first other one, after taking those before it. @return this model
     */
    public ImageModel writingGranulesOnce(int granule) {
        writeOnceGranule = granule;
        return this;
    }

    /**
     * Makes a shrink with a preallocation mode other than {@code OFF} a request the image must refuse with an
     * {@link IllegalArgumentException} (qcow2's rule, after QEMU's). @return this model
     */
    public ImageModel refusingPreallocatedShrinks() {
        refusePreallocatedShrink = true;
        return this;
    }

    /**
     * Makes every shrink a request the image must refuse with an {@link imago.api.UnsupportedFeatureException} of
     * {@link imago.api.Feature#RESIZE} (qed's rule, after QEMU's). @return this model
     */
    public ImageModel refusingShrinks() {
        refuseShrink = true;
        return this;
    }

    /**
     * Makes the bytes a resize adds, and with {@code initialBytesToo} those the model starts with, bytes that may read
     * as anything (a format whose unwritten bytes are not zeroes: {@link FormatTraits#readingUnwrittenBytesAsUndefined()});
     * the first read, mapping or content check of such a byte pins it, and from then on the image must keep it.
     *
     * @return this model
     */
    public ImageModel readingUnwrittenBytesAsUndefined(boolean initialBytesToo) {
        growthUndefined = true;
        if (initialBytesToo) {
            undefined.set(0, bytes.length);
        }
        return this;
    }

    /** The model's size. */
    public long size() {
        return bytes.length;
    }

    /** A copy of the expected content (bytes that may read as zero or old hold the old value). */
    public byte[] content() {
        return bytes.clone();
    }

    /** Closes an image and opens it again, for {@link ImageOp.Reopen}. */
    @FunctionalInterface
    public interface Reopener {
        /** Closes {@code image} and returns it opened again. @throws IOException if either fails */
        Image reopen(Image image) throws IOException;
    }

    /**
     * Runs {@code ops} on {@code image} and on this model, checking as it goes.
     *
     * @throws AssertionError naming the step, the operation and the first difference
     * @throws IllegalArgumentException if {@code ops} has a {@link ImageOp.Reopen}
     */
    public void run(Image image, List<ImageOp> ops) throws IOException {
        run(image, ops, i -> {
            throw new IllegalArgumentException("this run cannot reopen the image");
        });
    }

    /**
     * Runs {@code ops} on {@code image} and on this model, checking as it goes, reopening the image with
     * {@code reopener}; returns the image open at the end (the caller closes it).
     *
     * @throws AssertionError naming the step, the operation and the first difference
     */
    public Image run(Image image, List<ImageOp> ops, Reopener reopener) throws IOException {
        Image current = image;
        checkSize(current, "at the start");
        for (int i = 0; i < ops.size(); i++) {
            ImageOp op = ops.get(i);
            String where = "step " + i + " " + op;
            if (op instanceof ImageOp.Reopen) {
                current = reopener.reopen(current);
            } else {
                step(current, op, where);
            }
            checkSize(current, "after " + where);
            if (op instanceof ImageOp.Resize || op instanceof ImageOp.Reopen) {
                checkContent(current, "after " + where);
            }
        }
        checkContent(current, "after the last step");
        return current;
    }

    /** A write of a write-once image: what the model expects of it, then of the image. */
    @FunctionalInterface
    private interface WriteRequest {
        void run() throws IOException;
    }

    /** A write of {@code data} at {@code offset} to a write-once image: see {@link #writingGranulesOnce}. */
    private void writeOnce(long offset, byte[] data, String where, WriteRequest request) throws IOException {
        long end = offset + data.length;
        long taken = offset;
        while (taken < end) {
            long granule = taken / writeOnceGranule;
            long granuleEnd = Math.min((granule + 1) * writeOnceGranule, bytes.length);
            if (writtenGranules.get((int) granule) || taken != granule * writeOnceGranule || end < granuleEnd) {
                break;
            }
            writtenGranules.set((int) granule);
            taken = granuleEnd;
        }
        try {
            request.run();
            expect(taken == end, where, "the write over granule " + taken / writeOnceGranule
                    + " (written already, or a part of it) was not refused");
        } catch (imago.api.UnsupportedFeatureException e) {
            if (taken == end || e.feature() != imago.api.Feature.OVERWRITES) {
                throw e;
            }
        }
        System.arraycopy(data, 0, bytes, (int) offset, (int) (taken - offset));
        maybeZero.clear((int) offset, (int) taken);
        undefined.clear((int) offset, (int) taken);
    }

    /**
     * Runs one step on the image and the model.
     *
     * @throws IllegalArgumentException for {@link ImageOp.Reopen}, which only {@link #run} can do
     */
    public void step(Image image, ImageOp op, String where) throws IOException {
        long size = bytes.length;
        switch (op) {
            case ImageOp.Read r -> {
                long[] at = ImageOp.fit(r.offset(), r.length(), size);
                ByteBuffer b = ByteBuffer.allocate((int) at[1]);
                image.read(b, at[0]);
                expect(b.position() == at[1], where, "the read left " + b.remaining() + " bytes unfilled");
                compare(b.array(), at[0], where + " (read of " + at[1] + " bytes at " + at[0] + ")");
            }
            case ImageOp.Write w -> {
                long[] at = ImageOp.fit(w.offset(), w.length(), size);
                byte[] data = new byte[(int) at[1]];
                new SplittableRandom(w.seed()).nextBytes(data);
                ByteBuffer b = ByteBuffer.wrap(data);
                if (writeOnceGranule > 0) {
                    writeOnce(at[0], data, where, () -> image.write(b, at[0]));
                    return;
                }
                image.write(b, at[0]);
                expect(!b.hasRemaining(), where, "the write left " + b.remaining() + " bytes unconsumed");
                System.arraycopy(data, 0, bytes, (int) at[0], data.length);
                maybeZero.clear((int) at[0], (int) (at[0] + at[1]));
                undefined.clear((int) at[0], (int) (at[0] + at[1]));
            }
            case ImageOp.WriteZeroes z -> {
                long[] at = ImageOp.fit(z.offset(), z.length(), size);
                Set<ZeroFlag> flags = z.mayUnmap() ? Set.of(ZeroFlag.MAY_UNMAP) : Set.of();
                if (writeOnceGranule > 0) {
                    writeOnce(at[0], new byte[(int) at[1]], where, () -> image.writeZeroes(at[0], at[1], flags));
                    return;
                }
                image.writeZeroes(at[0], at[1], flags);
                Arrays.fill(bytes, (int) at[0], (int) (at[0] + at[1]), (byte) 0);
                maybeZero.clear((int) at[0], (int) (at[0] + at[1]));
                undefined.clear((int) at[0], (int) (at[0] + at[1]));
            }
            case ImageOp.Discard d -> {
                long[] at = ImageOp.fit(d.offset(), d.length(), size);
                image.discard(at[0], at[1]);
                if (discard == DiscardSemantics.ZEROES) {
                    Arrays.fill(bytes, (int) at[0], (int) (at[0] + at[1]), (byte) 0);
                } else {
                    maybeZero.set((int) at[0], (int) (at[0] + at[1]));
                }
            }
            case ImageOp.Resize r -> {
                if (refuseShrink && r.size() < size) {
                    try {
                        image.resize(r.size(), r.preallocation());
                    } catch (imago.api.UnsupportedFeatureException expected) {
                        if (expected.feature() == imago.api.Feature.RESIZE) {
                            return;
                        }
                        throw expected;
                    }
                    throw new AssertionError(where + ": a shrink was not refused");
                }
                if (refusePreallocatedShrink && r.size() < size && r.preallocation() != Preallocation.OFF) {
                    try {
                        image.resize(r.size(), r.preallocation());
                    } catch (IllegalArgumentException expected) {
                        return;
                    }
                    throw new AssertionError(where + ": a shrink with preallocation was not refused");
                }
                image.resize(r.size(), r.preallocation());
                // cut at the requested size, then zero up to the virtual size
                bytes = Arrays.copyOf(Arrays.copyOf(bytes, Math.toIntExact(r.size())),
                        Math.toIntExact(virtualSize.applyAsLong(r.size())));
                maybeZero.clear(bytes.length, Integer.MAX_VALUE);
                undefined.clear(bytes.length, Integer.MAX_VALUE);
                if (growthUndefined) {
                    // what was neither cut nor kept: past the old end, and past the requested size up to the virtual
                    undefined.set((int) Math.min(bytes.length, Math.min(size, r.size())), bytes.length);
                }
            }
            case ImageOp.Flush f -> image.flush();
            case ImageOp.Reopen r -> throw new IllegalArgumentException(where + ": only run can reopen");
            case ImageOp.Map m -> {
                if (size > 0) {
                    long[] at = ImageOp.fit(m.offset(), m.length(), size - 1);
                    checkMapping(image, at[0], Math.max(1, Math.min(m.length(), size - at[0])), where);
                }
            }
            case ImageOp.PastEnd p -> pastEnd(image, p, size, where);
        }
    }

    /** One mapping and the extents of the same range, checked against the model. */
    private void checkMapping(Image image, long offset, long length, String where) throws IOException {
        Mapping m = image.mapping(offset, length);
        expect(m.offset() == offset && m.length() >= 1 && m.length() <= length, where,
                "mapping " + m + " for " + length + " bytes at " + offset);
        int n = (int) m.length();
        switch (m) {
            case Mapping.Data d -> {
                ByteBuffer host = ByteBuffer.allocate(n);
                d.storage().read(host, d.hostOffset());
                compare(host.array(), offset, where + " (storage bytes behind " + m + ")");
            }
            case Mapping.Zero z -> compare(new byte[n], offset, where + " (" + m + ")");
            case Mapping.Unallocated u -> {
                if (image.backing().isEmpty()) {
                    compare(new byte[n], offset, where + " (" + m + ")");
                } // else the backing image answers; reads cover it
            }
            case Mapping.Special s -> { } // only the driver can decode it; reads cover it
            case Mapping.EndOfImage e -> throw new AssertionError(where + ": " + m + " inside the image");
        }
        List<Extent> extents = image.extents(offset, length);
        long pos = offset;
        for (Extent e : extents) {
            expect(e.offset() == pos, where, "extents " + extents + " do not cover the range contiguously");
            if (e.zero()) {
                compare(new byte[(int) e.length()], e.offset(), where + " (" + e + ")");
            }
            pos += e.length();
        }
        expect(pos == offset + length, where, "extents " + extents + " end at " + pos + ", not " + (offset + length));
    }

    private void pastEnd(Image image, ImageOp.PastEnd p, long size, String where) throws IOException {
        long start = Math.max(0, size - p.back());
        long length = size - start + p.over();
        try {
            switch (p.kind()) {
                case READ -> image.read(ByteBuffer.allocate((int) length), start);
                case WRITE -> image.write(ByteBuffer.allocate((int) length), start);
                case WRITE_ZEROES -> image.writeZeroes(start, length, Set.of(ZeroFlag.MAY_UNMAP));
                case DISCARD -> image.discard(start, length);
                case MAP -> image.mapping(size + p.over() - 1, 1);
            }
        } catch (IllegalArgumentException expected) {
            return;
        }
        throw new AssertionError(where + ": " + p.kind() + " of " + length + " bytes at " + start
                + " in an image of " + size + " bytes was not refused");
    }

    private void checkSize(Image image, String where) {
        expect(image.size() == bytes.length, where, "image size " + image.size() + ", model size " + bytes.length);
    }

    /** Reads the whole image and compares it with the model. */
    public void checkContent(Image image, String where) throws IOException {
        ByteBuffer all = ByteBuffer.allocate(bytes.length);
        image.read(all, 0);
        compare(all.array(), 0, where + " (whole image)");
    }

    /**
     * Compares {@code actual}, read from guest {@code offset}, with the model; bytes that may read as
     * zero are pinned to what was read.
     */
    private void compare(byte[] actual, long offset, String where) {
        int off = (int) offset;
        int end = off + actual.length;
        int diff = Arrays.mismatch(actual, 0, actual.length, bytes, off, end);
        if (diff >= 0) {
            for (int i = diff; i < actual.length; i++) {
                int at = off + i;
                if (actual[i] == bytes[at]) {
                    continue;
                }
                if (actual[i] == 0 && maybeZero.get(at) || undefined.get(at)) {
                    bytes[at] = actual[i];
                    continue;
                }
                throw new AssertionError(where + ": guest byte " + at + " reads " + actual[i] + ", expected "
                        + bytes[at] + (maybeZero.get(at) ? " or 0" : ""));
            }
        }
        maybeZero.clear(off, end);
        undefined.clear(off, end);
    }

    private static void expect(boolean ok, String where, String what) {
        if (!ok) {
            throw new AssertionError(where + ": " + what);
        }
    }
}
