package imago.api;

import java.util.List;

/** The bitmaps of an image that has none and can store none: QEMU's answers for such a block driver. */
final class NoBitmaps implements Bitmaps {
    private final String resource;
    private final long size;

    NoBitmaps(String resource, long size) {
        this.resource = resource;
        this.size = size;
    }

    @Override
    public long size() {
        return size;
    }

    /** The refusal of an image without persistent bitmaps (QEMU: the driver cannot store them). */
    static UnsupportedFeatureException cannotStore(String resource) {
        return new UnsupportedFeatureException(resource, Feature.PERSISTENT_BITMAPS, "persistent bitmaps",
                "Operation not supported");
    }

    /** QEMU's first checks of a new bitmap, before the format is asked. */
    static void checkNew(String name, long granularity) {
        if (name.isEmpty()) {
            throw new IllegalArgumentException("Bitmap name cannot be empty");
        }
        if (granularity != 0 && (granularity < 512 || Long.bitCount(granularity) != 1)) {
            throw new IllegalArgumentException("Granularity must be power of 2 and at least 512");
        }
    }

    static IllegalArgumentException notFound(String name) {
        return new IllegalArgumentException("Dirty bitmap '" + name + "' not found");
    }

    @Override
    public List<BitmapInfo> list() {
        return List.of();
    }

    @Override
    public void add(String name, long granularity, boolean enabled) throws UnsupportedFeatureException {
        checkNew(name, granularity);
        throw cannotStore(resource);
    }

    @Override
    public void remove(String name) {
        throw notFound(name);
    }

    @Override
    public void clear(String name) {
        throw notFound(name);
    }

    @Override
    public void enable(String name) {
        throw notFound(name);
    }

    @Override
    public void disable(String name) {
        throw notFound(name);
    }

    @Override
    public void merge(String target, Bitmaps source, String sourceName) {
        throw notFound(target);
    }

    @Override
    public List<DirtyRun> runs(String name, long offset, long length) {
        throw notFound(name);
    }
}
