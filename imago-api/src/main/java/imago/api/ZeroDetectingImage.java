package imago.api;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * An image with QEMU's {@code detect-zeroes} ({@link #of}): a write (or compressed write) whose data is all zero
 * becomes a {@linkplain Image#writeZeroes zero write} of its range, which formats store without data where they can
 * (qcow2's zero clusters, a raw file's holes), as QEMU's block layer makes it with {@code detect-zeroes=on} (the whole
 * request is looked at, not its parts); with {@code unmap} ({@code detect-zeroes=unmap}) the zero write may release
 * the range ({@link ZeroFlag#MAY_UNMAP}). What the image reads is the same either way. Every other request goes to
 * the image beneath unchanged: every method of {@link Image} is forwarded, defaults included, so that the image
 * beneath answers with its own capabilities (a test checks that none is left to the interface's default).
 */
public final class ZeroDetectingImage implements Image {
    private static final int CHUNK = 64 * 1024;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(CHUNK).asReadOnlyBuffer();

    private final Image image;
    private final Set<ZeroFlag> flags;

    private ZeroDetectingImage(Image image, boolean unmap) {
        this.image = Objects.requireNonNull(image, "image");
        this.flags = unmap ? EnumSet.of(ZeroFlag.MAY_UNMAP) : EnumSet.noneOf(ZeroFlag.class);
    }

    /**
     * {@code image}, its writes of all-zero data made zero writes; closing the result closes {@code image}.
     *
     * @param image the image to write through
     * @param unmap whether the zero writes may release what they zero ({@code detect-zeroes=unmap})
     * @return the image that detects zeroes
     */
    public static Image of(Image image, boolean unmap) {
        return new ZeroDetectingImage(image, unmap);
    }

    /** Whether {@code data}'s remaining bytes are all zero (and there is at least one). */
    static boolean allZero(ByteBuffer data) {
        if (!data.hasRemaining()) {
            return false;
        }
        for (int p = data.position(); p < data.limit(); p += CHUNK) {
            int n = Math.min(CHUNK, data.limit() - p);
            if (data.slice(p, n).mismatch(ZEROES.slice(0, n)) >= 0) {
                return false;
            }
        }
        return true;
    }

    /** Zeroes {@code src}'s range instead of writing it, if it is all zero; consumes {@code src} then. */
    private boolean zeroed(ByteBuffer src, long offset) throws IOException {
        if (!allZero(src)) {
            return false;
        }
        zero(src, offset);
        return true;
    }

    /** Zeroes {@code src}'s range (known to be all zero) instead of writing it; consumes {@code src}. */
    private void zero(ByteBuffer src, long offset) throws IOException {
        image.writeZeroes(offset, src.remaining(), flags);
        src.position(src.limit());
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        if (!zeroed(src, offset)) {
            image.write(src, offset);
        }
    }

    @Override
    public void writeCompressed(ByteBuffer src, long offset) throws IOException {
        // QEMU looks for zeroes before it compresses: a compressed write of zeroes is a zero write too (not the empty
        // one that ends a run of compressed writes)
        if (!src.hasRemaining() || !zeroed(src, offset)) {
            image.writeCompressed(src, offset);
        }
    }

    @Override
    public PendingWrite compress(ByteBuffer src, long offset) throws IOException {
        // looked at once, now: src does not change before the write is made
        return allZero(src) ? () -> zero(src, offset) : image.compress(src, offset);
    }

    @Override
    public String name() {
        return image.name();
    }

    @Override
    public String format() {
        return image.format();
    }

    @Override
    public long size() {
        return image.size();
    }

    @Override
    public boolean readOnly() {
        return image.readOnly();
    }

    @Override
    public boolean supports(Feature feature) {
        return image.supports(feature);
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        image.read(dst, offset);
    }

    @Override
    public void copyTo(long offset, long length, Image target, long targetOffset) throws IOException {
        image.copyTo(offset, length, target, targetOffset);
    }

    @Override
    public void writeZeroes(long offset, long length, Set<ZeroFlag> zeroFlags) throws IOException {
        image.writeZeroes(offset, length, zeroFlags);
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        image.writeZeroes(offset, length);
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        image.discard(offset, length);
    }

    @Override
    public void flush() throws IOException {
        image.flush();
    }

    @Override
    public void resize(long newSize, Preallocation preallocation) throws IOException {
        image.resize(newSize, preallocation);
    }

    @Override
    public void makeEmpty() throws IOException {
        image.makeEmpty();
    }

    @Override
    public void changeBackingFile(String storedName, String backingFormat) throws IOException {
        image.changeBackingFile(storedName, backingFormat);
    }

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        return image.mapping(offset, maxLength);
    }

    @Override
    public Extent extent(long offset, long maxLength) throws IOException {
        return image.extent(offset, maxLength);
    }

    @Override
    public List<Extent> extents(long offset, long length) throws IOException {
        return image.extents(offset, length);
    }

    @Override
    public List<String> dirtyBitmaps() {
        return image.dirtyBitmaps();
    }

    @Override
    public DirtyRun dirtyRun(String bitmap, long offset, long maxLength) throws IOException {
        return image.dirtyRun(bitmap, offset, maxLength);
    }

    @Override
    public Bitmaps bitmaps() {
        return image.bitmaps();
    }

    @Override
    public VmState vmState() {
        return image.vmState();
    }

    @Override
    public Optional<Image> backing() {
        return image.backing();
    }

    @Override
    public ImageInfo info() throws IOException {
        return image.info();
    }

    @Override
    public SnapshotInfo createSnapshot(String snapshot) throws IOException {
        return image.createSnapshot(snapshot);
    }

    @Override
    public void deleteSnapshot(String idOrName) throws IOException {
        image.deleteSnapshot(idOrName);
    }

    @Override
    public void applySnapshot(String idOrName) throws IOException {
        image.applySnapshot(idOrName);
    }

    @Override
    public CheckReport check(Repair repair) throws IOException {
        return image.check(repair);
    }

    @Override
    public void close() throws IOException {
        image.close();
    }
}
