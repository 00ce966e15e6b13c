package imago.api;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The VM state area of an image's top layer: where QEMU's {@code savevm} stores a virtual machine's memory and
 * device state next to the disk, what qemu-io's {@code read -b} and {@code write -b} address. A view handed out by
 * {@link Image#vmState()}; positions count from the start of the area. qcow2 keeps the area in ordinary clusters
 * past the virtual disk (from the first L1 entry boundary at or past the virtual size), through the active L1 and
 * L2 tables, so that it is invisible to the guest, to {@code map}, {@code convert} and {@code compare}, and an
 * internal snapshot taken afterwards keeps it; the other formats have none ({@link Image#supports} answers
 * {@link Feature#VM_STATE}).
 *
 * <p>What was never written reads as zero, or, in a qcow2 image with a backing file, as the backing image reads
 * at the same offset of its own (as in QEMU). Writes allocate as the image's other writes do, crash-safe, and
 * change neither the virtual size nor the persistent dirty bitmaps.
 */
public interface VmState {

    /**
     * Reads exactly {@code dst.remaining()} bytes of the area from {@code position}.
     *
     * @throws UnsupportedFeatureException ({@link Feature#VM_STATE}) if the image has no VM state area
     * @throws IllegalArgumentException if {@code position} is negative or the range passes the area's end (qcow2: a
     *         guest offset past QEMU's largest, 2^63 - 2^30)
     * @throws IOException if the image cannot be read
     */
    void read(ByteBuffer dst, long position) throws IOException;

    /**
     * Writes all of {@code src.remaining()} bytes into the area from {@code position}.
     *
     * @throws UnsupportedFeatureException ({@link Feature#VM_STATE}) if the image has no VM state area
     * @throws ImageLimitException if the format's tables cannot grow to reach the range (qcow2: an L1 table past
     *         QEMU's 32 MiB); nothing changed then
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IllegalArgumentException if {@code position} is negative or the range passes the area's end
     * @throws IOException if the write fails; the image stays consistent
     */
    void write(ByteBuffer src, long position) throws IOException;

    /** The area of an image {@code name} of {@code format} that has none: every request refuses. */
    static VmState none(String name, String format) {
        return new VmState() {
            @Override
            public void read(ByteBuffer dst, long position) throws IOException {
                throw refusal();
            }

            @Override
            public void write(ByteBuffer src, long position) throws IOException {
                throw refusal();
            }

            private UnsupportedFeatureException refusal() {
                return new UnsupportedFeatureException(name, Feature.VM_STATE, "the " + format
                        + " format has no VM state area");
            }
        };
    }
}
