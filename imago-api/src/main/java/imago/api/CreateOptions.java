package imago.api;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * What to create: the options {@code qemu-img create} takes. Format-specific options travel in
 * {@code formatOptions} under qemu-img's {@code -o} names (e.g. {@code cluster_size}); a driver
 * rejects names it does not know.
 *
 * @param size virtual size in bytes; empty to take the backing file's size
 * @param preallocation how much space to reserve
 * @param backingFile the backing file name to record, as the user gave it
 * @param backingFormat the backing file's format to record
 * @param formatOptions format-specific {@code -o} options, in the order given
 * @param secrets the secrets options name by id ({@code key-secret=ID} for an encrypted image)
 */
public record CreateOptions(OptionalLong size, Preallocation preallocation, Optional<String> backingFile,
        Optional<String> backingFormat, Map<String, String> formatOptions, Secrets secrets) {

    /** Validates the fields and freezes {@code formatOptions}. */
    public CreateOptions {
        Objects.requireNonNull(size, "size");
        Objects.requireNonNull(preallocation, "preallocation");
        Objects.requireNonNull(backingFile, "backingFile");
        Objects.requireNonNull(backingFormat, "backingFormat");
        if (size.isPresent() && size.getAsLong() < 0) {
            throw new IllegalArgumentException("Image size must be non-negative, got " + size.getAsLong());
        }
        formatOptions = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(formatOptions));
        Objects.requireNonNull(secrets, "secrets");
    }

    /** Options without secrets. */
    public CreateOptions(OptionalLong size, Preallocation preallocation, Optional<String> backingFile,
            Optional<String> backingFormat, Map<String, String> formatOptions) {
        this(size, preallocation, backingFile, backingFormat, formatOptions, Secrets.none());
    }

    /** These options with {@code secrets} to look secrets up in. */
    public CreateOptions withSecrets(Secrets secrets) {
        return new CreateOptions(size, preallocation, backingFile, backingFormat, formatOptions, secrets);
    }

    /** Options for a plain image of {@code size} bytes. */
    public static CreateOptions ofSize(long size) {
        return builder().size(size).build();
    }

    /** A builder starting from no size, no preallocation, no backing file. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link CreateOptions}. */
    public static final class Builder {
        private OptionalLong size = OptionalLong.empty();
        private Preallocation preallocation = Preallocation.OFF;
        private String backingFile;
        private String backingFormat;
        private final Map<String, String> formatOptions = new LinkedHashMap<>();
        private Secrets secrets = Secrets.none();

        Builder() {
        }

        /** Sets the virtual size. @return this builder */
        public Builder size(long bytes) {
            this.size = OptionalLong.of(bytes);
            return this;
        }

        /** Sets the preallocation mode. @return this builder */
        public Builder preallocation(Preallocation mode) {
            this.preallocation = Objects.requireNonNull(mode);
            return this;
        }

        /** Records a backing file name. @return this builder */
        public Builder backingFile(String name) {
            this.backingFile = Objects.requireNonNull(name);
            return this;
        }

        /** Records the backing file's format. @return this builder */
        public Builder backingFormat(String format) {
            this.backingFormat = Objects.requireNonNull(format);
            return this;
        }

        /** Adds a format-specific option. @return this builder */
        public Builder option(String name, String value) {
            formatOptions.put(Objects.requireNonNull(name), Objects.requireNonNull(value));
            return this;
        }

        /** Sets where secrets named by options are looked up. @return this builder */
        public Builder secrets(Secrets set) {
            this.secrets = Objects.requireNonNull(set);
            return this;
        }

        /** The options. */
        public CreateOptions build() {
            return new CreateOptions(size, preallocation, Optional.ofNullable(backingFile),
                    Optional.ofNullable(backingFormat), formatOptions, secrets);
        }
    }
}
