package imago.api;

import imago.api.spi.Storage;
import java.util.Objects;

/**
 * How one layer stores a run of guest bytes. Mappings are what format drivers describe and what the
 * generic I/O path acts on: a mapping always starts at the guest offset it was asked for.
 */
public sealed interface Mapping
        permits Mapping.Data, Mapping.Zero, Mapping.Unallocated, Mapping.Special, Mapping.EndOfImage {

    /** First guest byte described. */
    long offset();

    /** Number of guest bytes described (0 only for {@link EndOfImage}). */
    long length();

    /** The guest bytes live in {@code storage} from {@code hostOffset} on. */
    record Data(long offset, long length, Storage storage, long hostOffset) implements Mapping {
        /** Validates the fields. */
        public Data {
            checkRange(offset, length);
            Objects.requireNonNull(storage, "storage");
            if (hostOffset < 0) {
                throw new IllegalArgumentException("negative host offset " + hostOffset);
            }
        }
    }

    /**
     * The guest bytes read as zeroes. {@code storage} and {@code hostOffset} name space that is still
     * reserved for them (a preallocated zero cluster, a hole in a raw file), or are {@code null} and
     * {@code -1} when nothing is reserved.
     */
    record Zero(long offset, long length, Storage storage, long hostOffset) implements Mapping {
        /** Validates the fields. */
        public Zero {
            checkRange(offset, length);
            if ((storage == null) != (hostOffset < 0)) {
                throw new IllegalArgumentException("storage and host offset must be given together");
            }
        }

        /** A zero run with no host space behind it. */
        public static Zero unreserved(long offset, long length) {
            return new Zero(offset, length, null, -1);
        }

        /** Whether host space is reserved for the run. */
        public boolean reserved() {
            return storage != null;
        }
    }

    /**
     * This layer does not hold the bytes: they come from the backing image, or are zero without one.
     * {@code storage} and {@code hostOffset} name host space the layer has already set aside for them
     * (a qcow2 subcluster not yet written inside an allocated cluster), or are {@code null} and
     * {@code -1}; {@code qemu-img map} shows that space when no backing layer answers for the bytes.
     */
    record Unallocated(long offset, long length, Storage storage, long hostOffset) implements Mapping {
        /** Validates the fields. */
        public Unallocated {
            checkRange(offset, length);
            if ((storage == null) != (hostOffset < 0)) {
                throw new IllegalArgumentException("storage and host offset must be given together");
            }
        }

        /** An unallocated run with no host space set aside. */
        public Unallocated(long offset, long length) {
            this(offset, length, null, -1);
        }

        /** Whether host space is set aside for the run. */
        public boolean reserved() {
            return storage != null;
        }
    }

    /**
     * The bytes are stored in a way only the driver can decode (e.g. a compressed cluster);
     * {@code kind} names it for display ({@code "compressed"}).
     */
    record Special(long offset, long length, String kind) implements Mapping {
        /** Validates the fields. */
        public Special {
            checkRange(offset, length);
            Objects.requireNonNull(kind, "kind");
        }
    }

    /** {@code offset} is at or past the end of the layer. */
    record EndOfImage(long offset) implements Mapping {
        @Override
        public long length() {
            return 0;
        }
    }

    private static void checkRange(long offset, long length) {
        if (offset < 0 || length <= 0 || offset + length < 0) {
            throw new IllegalArgumentException("bad mapping range: offset " + offset + ", length " + length);
        }
    }
}
