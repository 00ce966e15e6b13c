package imago.api.spi;

import imago.api.Extent;
import imago.api.Image;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/** What lies below a layer that has a backing image: its bytes, and zeroes past its end. */
final class BackingImageReader implements BackingReader {
    private final Image backing;

    BackingImageReader(Image backing) {
        this.backing = backing;
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        int n = dst.remaining();
        long inBacking = Math.max(0, Math.min(n, backing.size() - offset));
        if (inBacking > 0) {
            backing.read(dst.slice(dst.position(), (int) inBacking), offset);
        }
        if (inBacking < n) {
            MemorySegment.ofBuffer(dst.slice(dst.position() + (int) inBacking, n - (int) inBacking)).fill((byte) 0);
        }
        dst.position(dst.limit());
    }

    /**
     * {@inheritDoc} By the backing image's extents (QEMU's block status, as a zero write's "does the rest of the
     * cluster read as zero" asks it); past its end everything does.
     */
    @Override
    public boolean readsAsZero(long offset, long length) throws IOException {
        long end = Math.min(offset + length, backing.size());
        for (long pos = offset; pos < end; ) {
            Extent e = backing.extent(pos, end - pos);
            if (!e.zero()) {
                return false;
            }
            pos += e.length();
        }
        return true;
    }
}
