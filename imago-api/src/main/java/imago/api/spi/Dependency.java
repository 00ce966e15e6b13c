package imago.api.spi;

import java.util.Objects;
import java.util.Optional;

/**
 * A file that an open layer names and needs: opened by the probe module through the {@link imago.api.OpenGate},
 * never by the driver.
 */
public sealed interface Dependency permits Dependency.BackingFile, Dependency.DataFile, Dependency.ExtentFile {

    /** The name exactly as stored in the image: untrusted. */
    String storedName();

    /**
     * The image reads unallocated ranges from this backing file.
     *
     * @param storedName the name as stored in the image
     * @param format the backing format recorded in the image, if any
     */
    record BackingFile(String storedName, Optional<String> format) implements Dependency {
        /** Validates the fields. */
        public BackingFile {
            Objects.requireNonNull(storedName, "storedName");
            Objects.requireNonNull(format, "format");
        }
    }

    /**
     * The image keeps its guest data in this external file; the probe module opens it and hands it to
     * {@link FormatInstance#attach(Dependency, Storage)}.
     *
     * @param storedName the name as stored in the image
     */
    record DataFile(String storedName) implements Dependency {
        /** Validates the fields. */
        public DataFile {
            Objects.requireNonNull(storedName, "storedName");
        }
    }

    /**
     * The file holds part of the layer's own data (a VMDK extent, one file of a split image); the probe module
     * opens it (read-only when the layer is, or when {@code writable} is false) and hands it to
     * {@link FormatInstance#attach(Dependency, Storage)}. A file the layer names more than once, or its own
     * file, is refused.
     *
     * @param storedName the name as stored in the image
     * @param writable whether the layer writes to it (a VMDK extent marked RDONLY is not)
     */
    record ExtentFile(String storedName, boolean writable) implements Dependency {
        /** Validates the fields. */
        public ExtentFile {
            Objects.requireNonNull(storedName, "storedName");
        }
    }
}
