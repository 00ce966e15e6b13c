package imago.api;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * What {@code qemu-img info} reports about one layer.
 *
 * @param filename the layer's resource name
 * @param format the driver name
 * @param virtualSize the guest size in bytes
 * @param actualSize bytes the storage occupies on its medium, when the storage can tell
 * @param clusterSize the allocation unit, for formats that have one
 * @param dirty whether the image is marked dirty (lazy refcounts in use and not cleanly closed)
 * @param backingFilename the backing file name as stored in the image
 * @param fullBackingFilename the backing file name resolved against the image's location
 * @param backingFormat the backing format as recorded in the image
 * @param formatSpecific format-specific fields with qemu-img's JSON names, in display order
 * @param snapshots the image's internal snapshots, oldest first
 */
public record ImageInfo(String filename, String format, long virtualSize, OptionalLong actualSize,
        OptionalInt clusterSize, boolean dirty, Optional<String> backingFilename,
        Optional<String> fullBackingFilename, Optional<String> backingFormat, Map<String, Object> formatSpecific,
        java.util.List<SnapshotInfo> snapshots) {

    /** Validates the fields and freezes {@code formatSpecific} (keeping its order) and {@code snapshots}. */
    public ImageInfo {
        Objects.requireNonNull(filename, "filename");
        Objects.requireNonNull(format, "format");
        Objects.requireNonNull(actualSize, "actualSize");
        Objects.requireNonNull(clusterSize, "clusterSize");
        Objects.requireNonNull(backingFilename, "backingFilename");
        Objects.requireNonNull(fullBackingFilename, "fullBackingFilename");
        Objects.requireNonNull(backingFormat, "backingFormat");
        formatSpecific = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(formatSpecific));
        snapshots = java.util.List.copyOf(snapshots);
    }
}
