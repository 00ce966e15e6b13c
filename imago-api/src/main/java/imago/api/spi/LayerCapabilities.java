package imago.api.spi;

import imago.api.Feature;
import imago.api.ImageInfo;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * What a {@link LayeredImage}'s layer offers beyond reads and writes: its optional {@link Capability capabilities},
 * each looked up or refused with the {@link UnsupportedFeatureException} a request for it throws, and what the layer
 * and its storage tell about the image ({@link ImageInfo}).
 */
final class LayerCapabilities {
    private final String name;
    private final String format;
    private final FormatInstance layer;
    private final Storage storage;

    LayerCapabilities(String format, FormatInstance layer, Storage storage) {
        this.name = storage.name();
        this.format = format;
        this.layer = layer;
        this.storage = storage;
    }

    /** Whether {@link #offers} answers for {@code feature}: the capabilities an image is asked for. */
    boolean answers(Feature feature) {
        return switch (feature) {
            case CHECK, RESIZE, INTERNAL_SNAPSHOTS, COMPRESSED_WRITES, BACKING_FILE, VM_STATE, RANDOM_WRITES,
                    OVERWRITES -> true;
            default -> false;
        };
    }

    /** Whether the layer offers {@code feature}, one that {@link #answers} is true for. */
    boolean offers(Feature feature) {
        return switch (feature) {
            case CHECK -> layer.capability(Checker.class).isPresent();
            case RESIZE -> layer.capability(Resizer.class).isPresent();
            case INTERNAL_SNAPSHOTS -> layer.capability(InternalSnapshots.class).isPresent();
            case COMPRESSED_WRITES -> layer.capability(CompressedWriter.class).isPresent();
            case BACKING_FILE -> layer.capability(BackingRewriter.class).isPresent();
            case VM_STATE -> layer.capability(VmStateArea.class).isPresent();
            case RANDOM_WRITES -> layer.randomWrites();
            case OVERWRITES -> layer.overwrites();
            default -> throw new IllegalArgumentException(feature + " is not a capability of a layer");
        };
    }

    /** The layer's capability {@code type}, or the exception a request for it throws. */
    <C extends Capability> C require(Class<C> type, Feature feature, String detail)
            throws UnsupportedFeatureException {
        return layer.capability(type).orElseThrow(() -> new UnsupportedFeatureException(name, feature, detail));
    }

    Resizer resizer() throws UnsupportedFeatureException {
        return require(Resizer.class, Feature.RESIZE, "the " + format + " format cannot be resized");
    }

    BackingRewriter backingRewriter(String detail) throws UnsupportedFeatureException {
        return require(BackingRewriter.class, Feature.BACKING_FILE, detail);
    }

    InternalSnapshots snapshots() throws UnsupportedFeatureException {
        return require(InternalSnapshots.class, Feature.INTERNAL_SNAPSHOTS, "the " + format
                + " format has no internal snapshots");
    }

    Checker checker() throws UnsupportedFeatureException {
        return require(Checker.class, Feature.CHECK, "This image format does not support checks");
    }

    /** The image's facts for {@code qemu-img info}: the layer's, with the storage's allocation where it has none. */
    ImageInfo info() throws IOException {
        Optional<Dependency.BackingFile> bf = layer.dependencies().stream()
                .filter(Dependency.BackingFile.class::isInstance).map(Dependency.BackingFile.class::cast)
                .findFirst();
        Optional<String> stored = bf.map(Dependency.BackingFile::storedName);
        Optional<String> full = stored.flatMap(storage::resolve).map(StorageLocation::toString);
        OptionalLong layerSize = layer.allocatedSize();
        return new ImageInfo(name, format, layer.size(),
                layerSize.isPresent() ? layerSize : storage.allocatedSize(), layer.clusterSize(),
                layer.dirty(), stored, full, bf.flatMap(Dependency.BackingFile::format), layer.formatSpecific(),
                layer.capability(InternalSnapshots.class).map(InternalSnapshots::list).orElse(List.of()));
    }
}
