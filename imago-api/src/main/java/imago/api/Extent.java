package imago.api;

import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A run of guest bytes resolved through the backing chain, with the fields {@code qemu-img map
 * --output=json} prints.
 *
 * @param offset first guest byte ({@code start} in qemu-img's JSON)
 * @param length number of bytes
 * @param depth how many backing layers down the answer was found (0 = the top image)
 * @param present whether a layer of the chain holds the bytes ("allocated" in QEMU's terms)
 * @param zero whether the bytes are known to read as zeroes
 * @param data whether the bytes are stored as data
 * @param compressed whether the bytes are stored compressed
 * @param hostOffset where the bytes are in {@code file}, when there is such a place
 * @param file the storage that holds them, when {@code hostOffset} is present
 */
public record Extent(long offset, long length, int depth, boolean present, boolean zero, boolean data,
        boolean compressed, OptionalLong hostOffset, Optional<String> file) {

    /** Validates the fields. */
    public Extent {
        if (offset < 0 || length <= 0 || depth < 0) {
            throw new IllegalArgumentException("bad extent: offset " + offset + ", length " + length
                    + ", depth " + depth);
        }
        Objects.requireNonNull(hostOffset, "hostOffset");
        Objects.requireNonNull(file, "file");
    }

    /** Data stored at {@code hostOffset} of {@code file} in the top layer. */
    public static Extent data(long offset, long length, long hostOffset, String file) {
        return new Extent(offset, length, 0, true, false, true, false, OptionalLong.of(hostOffset), Optional.of(file));
    }

    /**
     * Data mapped at {@code hostOffset} of {@code file} in the top layer that the file holds as a hole, so it reads
     * as zero (qcow2 metadata preallocation, as {@code qemu-img map} shows it).
     */
    public static Extent dataInHole(long offset, long length, long hostOffset, String file) {
        return new Extent(offset, length, 0, true, true, true, false, OptionalLong.of(hostOffset), Optional.of(file));
    }

    /** Bytes the top layer marks as zero, with no host space. */
    public static Extent zero(long offset, long length) {
        return new Extent(offset, length, 0, true, true, false, false, OptionalLong.empty(), Optional.empty());
    }

    /** Bytes the top layer marks as zero while keeping host space at {@code hostOffset} of {@code file}. */
    public static Extent zero(long offset, long length, long hostOffset, String file) {
        return new Extent(offset, length, 0, true, true, false, false, OptionalLong.of(hostOffset), Optional.of(file));
    }

    /** Compressed data in the top layer (no host offset a reader could use). */
    public static Extent compressed(long offset, long length) {
        return new Extent(offset, length, 0, true, false, true, true, OptionalLong.empty(), Optional.empty());
    }

    /** Bytes no layer holds, with nothing below: they read as zero. */
    public static Extent absent(long offset, long length) {
        return new Extent(offset, length, 0, false, true, false, false, OptionalLong.empty(), Optional.empty());
    }

    /** Bytes no layer holds, with nothing below, for which the top layer keeps host space at {@code hostOffset}. */
    public static Extent absent(long offset, long length, long hostOffset, String file) {
        return new Extent(offset, length, 0, false, true, false, false, OptionalLong.of(hostOffset),
                Optional.of(file));
    }

    /** This extent moved to start at {@code newOffset} with {@code newLength}, host offset adjusted. */
    public Extent slice(long newOffset, long newLength) {
        long delta = newOffset - offset;
        OptionalLong host = hostOffset.isPresent() ? OptionalLong.of(hostOffset.getAsLong() + delta) : hostOffset;
        return new Extent(newOffset, newLength, depth, present, zero, data, compressed, host, file);
    }

    /** The same extent seen from {@code levels} layers higher up the chain. */
    public Extent deeper(int levels) {
        return new Extent(offset, length, depth + levels, present, zero, data, compressed, hostOffset, file);
    }

    /**
     * Whether {@code next} starts where this extent ends and has the same attributes, with a host
     * offset that continues this one's, so that {@code qemu-img map} would print both as one.
     */
    public boolean mergeableWith(Extent next) {
        if (offset + length != next.offset || depth != next.depth || present != next.present
                || zero != next.zero || data != next.data || compressed != next.compressed
                || !file.equals(next.file) || hostOffset.isPresent() != next.hostOffset.isPresent()) {
            return false;
        }
        return hostOffset.isEmpty() || hostOffset.getAsLong() + length == next.hostOffset.getAsLong();
    }

    /** This extent followed by {@code next}; call only when {@link #mergeableWith} holds. */
    public Extent merge(Extent next) {
        return new Extent(offset, length + next.length, depth, present, zero, data, compressed, hostOffset, file);
    }
}
