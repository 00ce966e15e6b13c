package imago.vmdk.internal;

import java.util.Objects;
import java.util.Optional;

/**
 * One extent line of a descriptor: {@code ACCESS SECTORS TYPE ["FILE" [OFFSET]]}.
 *
 * @param access how the extent may be used
 * @param sectors the extent's size in 512-byte sectors as the line gives it (sparse extents take theirs from the
 *        extent's own header, as QEMU does)
 * @param type the kind of extent
 * @param fileName the file, exactly as stored (untrusted); empty only for {@link Type#ZERO}
 * @param offsetSectors where a {@link Type#FLAT} extent starts in its file, in sectors; 0 otherwise
 * @param line the 1-based line number in the descriptor, for messages
 */
record VmdkExtentLine(Access access, long sectors, Type type, Optional<String> fileName, long offsetSectors,
        int line) {

    /** Validates the fields. */
    VmdkExtentLine {
        Objects.requireNonNull(access, "access");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(fileName, "fileName");
        if (sectors <= 0 || offsetSectors < 0) {
            throw new IllegalArgumentException("bad extent: " + sectors + " sectors at " + offsetSectors);
        }
        if (fileName.isEmpty() != (type == Type.ZERO)) {
            throw new IllegalArgumentException(type + " extent " + (fileName.isEmpty() ? "without" : "with")
                    + " a file name");
        }
    }

    /** The access an extent line grants. */
    enum Access {
        /** Read and write. */
        RW,
        /** Read only. */
        RDONLY,
        /** Neither: reading it is an error. */
        NOACCESS
    }

    /** The extent kinds of the descriptor grammar. */
    enum Type {
        /** Guest bytes in a plain file, from an offset. */
        FLAT,
        /** A hosted sparse ({@code KDMV}) file, or a streamOptimized one. */
        SPARSE,
        /** Reads as zeroes; no file. */
        ZERO,
        /** An ESX flat file (no offset). */
        VMFS,
        /** An ESX {@code COWD} sparse file. */
        VMFSSPARSE,
        /** An ESX space-efficient sparse file (read only). */
        SESPARSE;

        /** Whether the file holds metadata besides guest bytes. */
        boolean sparse() {
            return this == SPARSE || this == VMFSSPARSE || this == SESPARSE;
        }
    }

    /** The size in bytes. */
    long bytes() {
        return sectors * VmdkDescriptor.SECTOR;
    }
}
