package imago.api.spi;

/**
 * An optional part of a {@link FormatInstance}: something only some formats can do (resize, internal snapshots,
 * check and repair, backing-file rewrite, compressed writes). A layer hands out what it has through
 * {@link FormatInstance#capability(Class)}; callers ask instead of catching exceptions.
 */
public interface Capability {
}
