package imago.api.spi;

import java.util.Objects;
import java.util.Optional;

/** A file that an open layer names and needs: opened by the probe module through the {@link OpenGate}. */
public sealed interface Dependency permits Dependency.BackingFile, Dependency.DataFile {

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
     * {@link FormatInstance#attachDataFile(Storage)}.
     *
     * @param storedName the name as stored in the image
     */
    record DataFile(String storedName) implements Dependency {
        /** Validates the fields. */
        public DataFile {
            Objects.requireNonNull(storedName, "storedName");
        }
    }
}
