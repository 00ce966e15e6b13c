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
