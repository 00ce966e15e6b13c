/**
 * The raw driver's implementation. A raw image has no header and no metadata: guest byte {@code n} is
 * storage byte {@code n}, and the virtual size is the storage size rounded up to whole 512-byte sectors
 * (QEMU's unit: the bytes of the last sector past the end of the storage read as zeroes). Every mapping is therefore an
 * identity mapping: {@link imago.api.Mapping.Data} where the storage holds data and
 * {@link imago.api.Mapping.Zero} with the same host offset where it has a hole (as {@code qemu-img map}
 * prints an offset for holes of raw files). Zeroing, discarding, resizing and preallocation are the
 * storage's own operations.
 *
 * <p>Probing always answers {@link imago.api.spi.Confidence#WEAK}: any bytes are a valid raw image, so
 * raw is only ever the fallback when no other format recognises an image.
 */
package imago.raw.internal;
