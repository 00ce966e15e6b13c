package imago.probe;

import java.util.Objects;
import java.util.Set;

/**
 * What an installed format can do, for tools that mirror qemu-img's rules per format.
 *
 * @param name the driver name
 * @param backingFile whether images can have a backing file
 * @param backingFormat whether images record the backing file's format
 * @param createOptions the {@code -o} option names create accepts
 * @param readOnly whether images of the format can only be read (and not created)
 * @param dirtyFlag whether qemu-img's info shows a dirty flag for the format
 *        ({@link imago.api.spi.FormatDriver#reportsDirtyFlag()})
 * @param zeroedWhenCreated whether a new image without a backing file reads as zeroes where nothing was written
 *        ({@link imago.api.spi.FormatDriver#createsZeroedImages()})
 */
public record FormatDescription(String name, boolean backingFile, boolean backingFormat, Set<String> createOptions,
        boolean readOnly, boolean dirtyFlag, boolean zeroedWhenCreated) {

    /** Validates the fields and freezes {@code createOptions}. */
    public FormatDescription {
        Objects.requireNonNull(name, "name");
        createOptions = Set.copyOf(createOptions);
    }
}
