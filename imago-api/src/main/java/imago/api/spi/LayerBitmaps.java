package imago.api.spi;

import imago.api.BitmapInfo;
import imago.api.Bitmaps;
import imago.api.DirtyRun;
import imago.api.Feature;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.LongSupplier;

/**
 * {@link Image#bitmaps()} of a {@link LayeredImage}: the layer's {@link DirtyBitmaps} to read and its
 * {@link BitmapEditor} to change, checked in QEMU's order so that the first failure is the one QEMU reports.
 */
final class LayerBitmaps implements Bitmaps {
    /** Reads a bitmap's runs as {@link imago.api.Image#dirtyRun} does (the image's checks and locks). */
    interface RunReader {
        DirtyRun run(String name, long offset, long maxLength) throws IOException;
    }

    private final String name;
    private final FormatInstance layer;
    private final boolean readOnly;
    private final LongSupplier size;
    private final RunReader reader;

    LayerBitmaps(String name, FormatInstance layer, boolean readOnly, LongSupplier size, RunReader reader) {
        this.name = name;
        this.layer = layer;
        this.readOnly = readOnly;
        this.size = size;
        this.reader = reader;
    }

    @Override
    public long size() {
        return size.getAsLong();
    }

    @Override
    public List<BitmapInfo> list() {
        return layer.capability(DirtyBitmaps.class).map(DirtyBitmaps::list).orElse(List.of());
    }

    @Override
    public void add(String bitmap, long granularity, boolean enabled) throws IOException {
        if (bitmap.isEmpty()) {
            throw new IllegalArgumentException("Bitmap name cannot be empty");
        }
        if (granularity != 0 && (granularity < 512 || Long.bitCount(granularity) != 1)) {
            throw new IllegalArgumentException("Granularity must be power of 2 and at least 512");
        }
        if (find(bitmap).isPresent()) {
            throw new IllegalArgumentException("Bitmap already exists: " + bitmap);
        }
        editor().add(bitmap, granularity, enabled);
    }

    @Override
    public void remove(String bitmap) throws IOException {
        existing(bitmap);
        editor().remove(bitmap);
    }

    @Override
    public void clear(String bitmap) throws IOException {
        consistent(existing(bitmap));
        editor().clear(bitmap);
    }

    @Override
    public void enable(String bitmap) throws IOException {
        consistent(existing(bitmap));
        editor().setEnabled(bitmap, true);
    }

    @Override
    public void disable(String bitmap) throws IOException {
        consistent(existing(bitmap));
        editor().setEnabled(bitmap, false);
    }

    @Override
    public void merge(String target, Bitmaps source, String sourceName) throws IOException {
        consistent(existing(target));
        BitmapInfo from = source.list().stream().filter(b -> b.name().equals(sourceName)).findFirst()
                .orElseThrow(() -> notFound(sourceName));
        consistent(from);
        if (source.size() != size()) {
            throw new IllegalArgumentException("Bitmaps are of different sizes (destination size is " + size()
                    + ", source size is " + source.size() + ") and can't be merged");
        }
        // read the whole source first: the target is unchanged if reading fails
        List<DirtyRun> dirty = new ArrayList<>();
        for (DirtyRun r : source.runs(sourceName, 0, source.size())) {
            if (r.dirty()) {
                dirty.add(r);
            }
        }
        BitmapEditor editor = editor();
        for (DirtyRun r : dirty) {
            editor.markDirty(target, r.offset(), r.length());
        }
    }

    @Override
    public List<DirtyRun> runs(String bitmap, long offset, long length) throws IOException {
        List<DirtyRun> out = new ArrayList<>();
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            DirtyRun r = reader.run(bitmap, pos, end - pos);
            if (!out.isEmpty() && out.getLast().dirty() == r.dirty()) {
                DirtyRun last = out.removeLast();
                r = new DirtyRun(last.offset(), last.length() + r.length(), r.dirty());
            }
            out.add(r);
            pos = r.offset() + r.length();
        }
        return out;
    }

    private Optional<BitmapInfo> find(String bitmap) {
        return list().stream().filter(b -> b.name().equals(bitmap)).findFirst();
    }

    private BitmapInfo existing(String bitmap) {
        return find(bitmap).orElseThrow(() -> notFound(bitmap));
    }

    private void consistent(BitmapInfo b) throws UnsupportedFeatureException {
        if (b.inUse()) {
            throw new UnsupportedFeatureException(name, Feature.PERSISTENT_BITMAPS,
                    "qcow2 inconsistent bitmap", "Bitmap '" + b.name() + "' is inconsistent and cannot be used\n"
                    + "Try block-dirty-bitmap-remove to delete this bitmap from disk");
        }
    }

    private BitmapEditor editor() throws IOException {
        if (readOnly) {
            throw new ReadOnlyImageException(name, "image is opened read-only");
        }
        return layer.capability(BitmapEditor.class).orElseThrow(() ->
                new UnsupportedFeatureException(name, Feature.PERSISTENT_BITMAPS, "persistent bitmaps",
                        "Operation not supported"));
    }

    private static IllegalArgumentException notFound(String bitmap) {
        return new IllegalArgumentException("Dirty bitmap '" + bitmap + "' not found");
    }
}
