package imago.cli.convert;

import imago.api.Extent;
import imago.api.Image;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * What a {@link Converter} reads: one image, or several read one after the other as one ({@code qemu-img convert}
 * with several sources), so that chunks, and compressed clusters, run on across the boundaries as in qemu-img.
 */
public interface Source {
    /** The guest size in bytes. */
    long size();

    /**
     * Fills {@code dst} from its position to its limit with the bytes at {@code offset}.
     *
     * @throws IOException if the bytes cannot be read
     */
    void read(ByteBuffer dst, long offset) throws IOException;

    /**
     * The run of bytes from {@code offset} that reads alike, at most {@code maxLength} long, as
     * {@link Image#extent(long, long)}.
     *
     * @throws IOException if the mapping cannot be read
     */
    Extent extent(long offset, long maxLength) throws IOException;

    /**
     * Copies {@code length} bytes from {@code offset} to the same offset of {@code target}, as reading and writing
     * them would; bytes stored unchanged in local files are copied by the kernel ({@link Image#copyTo}).
     *
     * @throws IOException if reading or writing fails
     */
    void copyTo(long offset, long length, Image target) throws IOException;

    /**
     * The unit in which the source's compressed data is stored (its cluster size), or 0 when it has none or it is not
     * known: a failed read of compressed data is reported at the first cluster that cannot be read, as qemu-img
     * convert, whose block status ends at each compressed cluster, reads and reports them one by one.
     *
     * @throws IOException if the image's information cannot be read
     */
    default int compressedUnit() throws IOException {
        return 0;
    }

    /** {@code image} as a source. */
    static Source of(Image image) {
        return new Source() {
            @Override
            public long size() {
                return image.size();
            }

            @Override
            public void read(ByteBuffer dst, long offset) throws IOException {
                image.read(dst, offset);
            }

            @Override
            public Extent extent(long offset, long maxLength) throws IOException {
                return image.extent(offset, maxLength);
            }

            @Override
            public int compressedUnit() throws IOException {
                return image.info().clusterSize().orElse(0);
            }

            @Override
            public void copyTo(long offset, long length, Image target) throws IOException {
                image.copyTo(offset, length, target, offset);
            }
        };
    }

    /** {@code images} one after the other; an extent never crosses from one to the next. */
    static Source concat(List<Image> images) {
        return images.size() == 1 ? of(images.getFirst()) : new Concatenated(List.copyOf(images));
    }

    /** Several images read as one. */
    record Concatenated(List<Image> images) implements Source {
        @Override
        public long size() {
            long total = 0;
            for (Image i : images) {
                total += i.size();
            }
            return total;
        }

        @Override
        public void read(ByteBuffer dst, long offset) throws IOException {
            long base = 0;
            for (Image i : images) {
                long end = base + i.size();
                if (dst.hasRemaining() && offset < end) {
                    int n = (int) Math.min(dst.remaining(), end - offset);
                    ByteBuffer part = dst.duplicate().limit(dst.position() + n);
                    i.read(part, offset - base);
                    dst.position(dst.position() + n);
                    offset += n;
                }
                base = end;
            }
            if (dst.hasRemaining()) {
                throw new IllegalArgumentException("read past the end of the sources at " + offset);
            }
        }

        @Override
        public void copyTo(long offset, long length, Image target) throws IOException {
            long base = 0;
            long pos = offset;
            long end = offset + length;
            for (Image i : images) {
                long imageEnd = base + i.size();
                if (pos < end && pos < imageEnd) {
                    long n = Math.min(end, imageEnd) - pos;
                    i.copyTo(pos - base, n, target, pos);
                    pos += n;
                }
                base = imageEnd;
            }
            if (pos < end) {
                throw new IllegalArgumentException("copy past the end of the sources at " + pos);
            }
        }

        @Override
        public Extent extent(long offset, long maxLength) throws IOException {
            long base = 0;
            for (Image i : images) {
                long end = base + i.size();
                if (offset < end) {
                    Extent e = i.extent(offset - base, Math.min(maxLength, end - offset));
                    return new Extent(e.offset() + base, e.length(), e.depth(), e.present(), e.zero(), e.data(),
                            e.compressed(), e.hostOffset(), e.file());
                }
                base = end;
            }
            throw new IllegalArgumentException("offset " + offset + " is past the end of the sources");
        }
    }
}
