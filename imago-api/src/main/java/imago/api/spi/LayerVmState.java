package imago.api.spi;

import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.api.VmState;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * {@link imago.api.Image#vmState()} of a {@link LayeredImage}: the layer's {@link VmStateArea}, with the image's
 * checks and locks (reads as the image's reads, writes as its writes: alongside other requests, refused while the
 * image is read-only) and the request's bounds checked first.
 */
final class LayerVmState implements VmState {
    /** Runs a request's step with the image's checks and locks. */
    @FunctionalInterface
    interface Runner {
        Void run(Locked.Step<Void> step) throws IOException;
    }

    private final String name;
    private final String format;
    private final FormatInstance layer;
    private final BackingReader below;
    private final Runner reading;
    private final Runner writing;

    LayerVmState(String name, String format, FormatInstance layer, BackingReader below, Runner reading,
            Runner writing) {
        this.name = name;
        this.format = format;
        this.layer = layer;
        this.below = below;
        this.reading = reading;
        this.writing = writing;
    }

    @Override
    public void read(ByteBuffer dst, long position) throws IOException {
        reading.run(() -> {
            VmStateArea area = area();
            checkRange("read", position, dst.remaining());
            if (dst.hasRemaining()) {
                area.read(dst, position, below);
            }
            return null;
        });
    }

    @Override
    public void write(ByteBuffer src, long position) throws IOException {
        writing.run(() -> {
            VmStateArea area = area();
            checkRange("write", position, src.remaining());
            if (src.hasRemaining()) {
                area.write(src, position, below);
            }
            return null;
        });
    }

    private VmStateArea area() throws UnsupportedFeatureException {
        return layer.capability(VmStateArea.class).orElseThrow(() -> new UnsupportedFeatureException(name,
                Feature.VM_STATE, "the " + format + " format has no VM state area"));
    }

    private void checkRange(String what, long position, int length) {
        if (position < 0 || position > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException(name + ": VM state " + what + " of " + length + " bytes at "
                    + position + " is outside the area");
        }
    }
}
