package imago.api.spi;

import java.time.Instant;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * What a layer is told about the backing image opened for its {@link Dependency.BackingFile}, for formats that
 * record something of their parent and check it against the parent found: UML's cow its size and mtime, VMDK the
 * parent's content ID (its {@code cid}).
 *
 * @param format the backing image's format name ({@code vmdk}, {@code qcow2}, ...)
 * @param size its virtual size in bytes
 * @param modified when its storage was last modified, if known
 * @param formatSpecific its format-specific information, as {@code info} shows it (empty if it has none)
 */
public record BackingFacts(String format, long size, Optional<Instant> modified, Map<String, Object> formatSpecific) {
    /** Checks the arguments and copies the map. */
    public BackingFacts {
        Objects.requireNonNull(format, "format");
        Objects.requireNonNull(modified, "modified");
        formatSpecific = Collections.unmodifiableMap(new LinkedHashMap<>(formatSpecific));
    }

    /** Facts with only a size: no modification time, no format-specific information (tests, simple layers). */
    public static BackingFacts ofSize(String format, long size) {
        return new BackingFacts(format, size, Optional.empty(), Map.of());
    }
}
