package imago.vmdk.internal;

import imago.api.spi.BackingReader;
import imago.api.spi.WriteTicket;
import java.io.IOException;

/** Appends compressed grains to a streamOptimized extent, in guest order. */
final class VmdkStreamWriter {

    /** Makes the writer of an extent. */
    @FunctionalInterface
    interface Factory {
        VmdkStreamWriter create(VmdkSparseExtent extent);
    }

    private final VmdkSparseExtent extent;

    VmdkStreamWriter(VmdkSparseExtent extent) {
        this.extent = extent;
    }

    WriteTicket beginWrite(long base, long offset, long length, BackingReader below) throws IOException {
        throw extent.notAppendOnly(base + offset, "not yet");
    }

    long ensureZero(long offset, long length) {
        return 0;
    }

    void flush() {
    }
}
