package imago.testkit;

import imago.api.Image;
import imago.api.Preallocation;
import java.util.List;

/**
 * One step of a random operation sequence on an {@link imago.api.Image}, format-independent.
 *
 * <p>Offsets and lengths are raw generated values; {@link ImageModel} fits them to the image's size at
 * the time the step runs ({@link #fit}), so that every sequence stays valid whatever the resizes before
 * it did, and shrinking a value never makes a sequence invalid. {@link PastEnd} is the one step meant
 * to leave the image: it must be refused. {@link Reopen} closes the image and opens it again, for checkers that
 * can ({@link ImageModel#run(Image, List, ImageModel.Reopener)}).
 */
public sealed interface ImageOp {

    /** Reads and compares with the model. */
    record Read(long offset, long length) implements ImageOp { }

    /** Writes {@code length} bytes made from {@code seed}. */
    record Write(long offset, long length, long seed) implements ImageOp { }

    /** {@code writeZeroes}, with or without {@link imago.api.ZeroFlag#MAY_UNMAP}. */
    record WriteZeroes(long offset, long length, boolean mayUnmap) implements ImageOp { }

    /** {@code discard}. */
    record Discard(long offset, long length) implements ImageOp { }

    /** {@code resize} to {@code size} (not fitted: any size up to the generator's maximum). */
    record Resize(long size, Preallocation preallocation) implements ImageOp { }

    /** {@code flush}. */
    record Flush() implements ImageOp { }

    /** {@code close}, then open the image again. */
    record Reopen() implements ImageOp { }

    /** Checks {@code mapping} and {@code extents} from {@code offset} against the model. */
    record Map(long offset, long length) implements ImageOp { }

    /** A request of kind {@code kind} that starts {@code back} bytes before the end and overshoots it by {@code over}. */
    record PastEnd(Kind kind, long back, long over) implements ImageOp {
        /** Which request runs past the end. */
        public enum Kind { READ, WRITE, WRITE_ZEROES, DISCARD, MAP }
    }

    /**
     * {@code [offset, offset + length)} moved inside {@code [0, size]}: the offset wraps modulo
     * {@code size + 1} and the length is cut at the end.
     *
     * @return {offset, length}
     */
    static long[] fit(long offset, long length, long size) {
        long off = offset % (size + 1);
        return new long[] {off, Math.min(length, size - off)};
    }
}
