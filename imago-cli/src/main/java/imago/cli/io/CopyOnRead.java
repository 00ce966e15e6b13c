package imago.cli.io;

import imago.api.Extent;
import imago.api.Image;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Set;

/**
 * qemu-io's {@code -C} (QEMU's copy-on-read, as in {@code bdrv_co_do_copy_on_readv}): after a read, every
 * stretch of the read, widened to whole clusters, that the top image does not hold itself is written into it
 * with the bytes it reads as: a zero write where they are all zero, else a data write. Runs are at most
 * QEMU's bounce-buffer size, and a run that crosses a held range stops there, so the top image ends up with
 * the same allocation as QEMU's.
 */
final class CopyOnRead {
    /** QEMU's {@code MAX_BOUNCE_BUFFER}: the most one copy moves. */
    private static final long MAX_RUN = 32768L << 9;
    private static final MemorySegment ZERO_PIECE = MemorySegment.ofArray(new byte[64 << 10]);

    private final Image image;
    private final long cluster;

    /** @param cluster the top image's allocation unit (its cluster size; 512 for formats without one) */
    CopyOnRead(Image image, long cluster) {
        this.image = image;
        this.cluster = cluster;
    }

    /** Copies up what {@code [offset, offset + count)} reads from below the top image. */
    void copy(long offset, long count) throws IOException {
        if (count == 0 || image.readOnly()) {
            return;
        }
        long end = Math.min(image.size(), ceil(offset + count));
        long pos = offset - offset % cluster;
        while (pos < end) {
            Extent e = image.extent(pos, end - pos);
            if (heldByTop(e)) {
                pos += e.length();
                continue;
            }
            long limit = Math.min(end, pos + MAX_RUN);
            long runEnd = pos + e.length();
            while (runEnd < limit) {
                Extent next = image.extent(runEnd, limit - runEnd);
                if (heldByTop(next)) {
                    break;
                }
                runEnd += next.length();
            }
            runEnd = Math.min(runEnd, limit);
            copyRun(pos, runEnd - pos);
            pos = runEnd;
        }
    }

    private void copyRun(long from, long length) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect((int) length);
        image.read(buf, from);
        buf.flip();
        if (allZero(buf)) {
            image.writeZeroes(from, length, Set.of());
        } else {
            image.write(buf, from);
        }
    }

    private static boolean heldByTop(Extent e) {
        return e.depth() == 0 && e.present();
    }

    private long ceil(long n) {
        return (n + cluster - 1) / cluster * cluster;
    }

    /** Whether every byte of {@code buf} (position to limit) is zero, compared a piece at a time. */
    private static boolean allZero(ByteBuffer buf) {
        MemorySegment s = MemorySegment.ofBuffer(buf);
        for (long at = 0; at < s.byteSize(); at += ZERO_PIECE.byteSize()) {
            long n = Math.min(ZERO_PIECE.byteSize(), s.byteSize() - at);
            if (s.asSlice(at, n).mismatch(ZERO_PIECE.asSlice(0, n)) >= 0) {
                return false;
            }
        }
        return true;
    }
}
