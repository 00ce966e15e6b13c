package imago.qcow2.internal;

import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BitmapEditor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Changes to the persistent bitmaps of a writable image ({@link BitmapEditor}), made in the
 * {@link Qcow2BitmapTracker} and stored with it on close. A new bitmap passes QEMU's
 * qcow2_co_can_store_new_dirty_bitmap checks first, refused with its words (the feature name
 * {@code "persistent bitmap"} tells the CLI to say which bitmap and image, as qemu-img does).
 */
final class Qcow2BitmapEditor implements BitmapEditor {
    private final Qcow2State st;

    Qcow2BitmapEditor(Qcow2State st) {
        this.st = st;
    }

    @Override
    public void add(String name, long granularity, boolean enabled) throws IOException {
        Qcow2BitmapTracker tracker = st.tracker;
        if (tracker == null) {
            // without autoclear bits, any program could have written the image since: bitmaps would always be stale
            throw cannotStore("Cannot store dirty bitmaps in qcow2 v2 files");
        }
        int clusterSize = st.header.clusterSize();
        long g = granularity != 0 ? granularity : Math.clamp(clusterSize, 4096, 65536);
        int bits = Long.numberOfTrailingZeros(g);
        if (bits > Qcow2Bitmaps.MAX_GRANULARITY_BITS) {
            throw cannotStore("Granularity exceeds maximum (" + (1L << Qcow2Bitmaps.MAX_GRANULARITY_BITS) + " bytes)");
        }
        if (bits < Qcow2Bitmaps.MIN_GRANULARITY_BITS) {
            throw cannotStore("Granularity is under minimum (" + (1L << Qcow2Bitmaps.MIN_GRANULARITY_BITS) + " bytes)");
        }
        long bitmapBytes = Qcow2Checks.divCeil(Qcow2Bitmaps.bitCount(tracker.size(), bits), 8);
        if (bitmapBytes > Qcow2Bitmaps.MAX_PHYS_SIZE) {
            throw cannotStore("Too much space will be occupied by the bitmap. Use larger granularity");
        }
        int nameBytes = name.getBytes(StandardCharsets.UTF_8).length;
        if (nameBytes > Qcow2Bitmaps.MAX_NAME) {
            throw cannotStore("Name length exceeds maximum (" + Qcow2Bitmaps.MAX_NAME + " characters)");
        }
        synchronized (tracker) {
            if (tracker.bitmaps.size() >= Qcow2Bitmaps.MAX_BITMAPS) {
                throw cannotStore("Maximum number of persistent bitmaps is already reached");
            }
            long dirBytes = 0;
            for (Qcow2TrackedBitmap t : tracker.bitmaps) {
                dirBytes += (Qcow2Bitmaps.ENTRY_FIXED + t.extra.length
                        + t.name.getBytes(StandardCharsets.UTF_8).length + 7) & ~7;
            }
            if (dirBytes + ((Qcow2Bitmaps.ENTRY_FIXED + nameBytes + 7) & ~7) > Qcow2Bitmaps.MAX_DIRECTORY_SIZE) {
                throw cannotStore("Not enough space in the bitmap directory");
            }
            if (tracker.find(name) != null) {
                throw new IllegalArgumentException("Bitmap already exists: " + name);
            }
            tracker.add(name, bits, enabled);
        }
    }

    @Override
    public void remove(String name) {
        Qcow2BitmapTracker tracker = st.tracker;
        tracker.remove(existing(name));
    }

    @Override
    public void clear(String name) throws IOException {
        st.tracker.clear(consistent(name));
    }

    @Override
    public void setEnabled(String name, boolean enabled) throws IOException {
        st.tracker.setEnabled(consistent(name), enabled);
    }

    @Override
    public void markDirty(String name, long offset, long length) throws IOException {
        st.tracker.markDirty(consistent(name), offset, length);
    }

    private Qcow2TrackedBitmap existing(String name) {
        Qcow2TrackedBitmap t = st.tracker == null ? null : st.tracker.find(name);
        if (t == null) {
            throw new IllegalArgumentException("Dirty bitmap '" + name + "' not found");
        }
        return t;
    }

    private Qcow2TrackedBitmap consistent(String name) throws UnsupportedFeatureException {
        Qcow2TrackedBitmap t = existing(name);
        if (t.inUseAtOpen) {
            throw new UnsupportedFeatureException(st.resource, Feature.PERSISTENT_BITMAPS, "qcow2 inconsistent bitmap",
                    "Bitmap '" + name + "' is inconsistent and cannot be used\nTry block-dirty-bitmap-remove to delete "
                    + "this bitmap from disk");
        }
        return t;
    }

    private UnsupportedFeatureException cannotStore(String reason) {
        return new UnsupportedFeatureException(st.resource, Feature.PERSISTENT_BITMAPS, "persistent bitmap", reason);
    }
}
