package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Checks.MAX_HOST_OFFSET;
import static imago.qcow2.internal.Qcow2Entries.COMPRESSED;
import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.L1E_RESERVED;
import static imago.qcow2.internal.Qcow2Entries.L2E_RESERVED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;
import static imago.qcow2.internal.Qcow2Entries.ZERO_FLAG;

import imago.api.CorruptImageException;
import imago.api.Mapping;
import java.io.IOException;

/**
 * What lies at a guest offset: each L1 and L2 entry validated when used, classified in QEMU's order (per
 * subcluster with extended L2 entries), and consecutive units of one kind merged while, for kinds with host space,
 * their host offsets are contiguous, so that one mapping becomes one storage read. Reads take no lock: L2 tables
 * come from the cache, whose hits are lock-free, and extended entries change in an order readers can follow.
 */
final class Qcow2Mapping extends Qcow2Room {
    /** Compressed clusters mapped (and decoded) together at most. */
    static final int MAX_COMPRESSED_RUN = 64;

    /** The kind of the special mappings of an encrypted image's data, which {@link Qcow2Crypto} decrypts. */
    static final String ENCRYPTED = "encrypted";

    /** What a unit (cluster or subcluster) holds. */
    enum Kind { UNALLOCATED, ZERO_PLAIN, ZERO_ALLOC, DATA, COMPRESSED }

    /** One classified unit: what lies at a guest offset, up to {@code end}; {@code host} is for that offset. */
    record Unit(Kind kind, long host, long end, long entry) {
    }

    private final Qcow2Tables tables;

    Qcow2Mapping(Qcow2State st, Qcow2Tables tables) {
        super(st);
        this.tables = tables;
    }

    Mapping mapping(long offset, long maxLength) throws IOException {
        if (offset < 0 || maxLength < 1) {
            throw new IllegalArgumentException(resource + ": bad mapping query: offset " + offset + ", length "
                    + maxLength);
        }
        if (offset >= st.size) {
            return new Mapping.EndOfImage(offset);
        }
        long end = offset + Math.min(maxLength, st.size - offset);
        Qcow2Crypto crypto = st.crypto;
        if (crypto != null) {
            // a locked image (opened for info without its secret) shows no guest byte
            crypto.requireKey();
        }
        Unit first = unit(offset);
        long pos = Math.min(first.end(), end);
        // runs of compressed clusters map as one Special mapping, so readSpecial can decode them in parallel
        long limit = first.kind() == Kind.COMPRESSED ? Math.min(end, offset + MAX_COMPRESSED_RUN * clusterSize) : end;
        while (pos < limit) {
            Unit next = unit(pos);
            if (next.kind() != first.kind()) {
                break;
            }
            if ((hasHost(first.kind()) || first.host() >= 0 || next.host() >= 0)
                    && next.host() != first.host() + (pos - offset)) {
                break;
            }
            pos = Math.min(next.end(), limit);
        }
        long length = pos - offset;
        // an encrypted image shows no host offset, as QEMU's map: its host bytes are not the guest's
        boolean hosted = first.host() >= 0 && crypto == null;
        return switch (first.kind()) {
            case UNALLOCATED -> hosted ? new Mapping.Unallocated(offset, length, st.dataStorage(), first.host())
                    : new Mapping.Unallocated(offset, length);
            case ZERO_PLAIN -> Mapping.Zero.unreserved(offset, length);
            case ZERO_ALLOC -> hosted ? new Mapping.Zero(offset, length, st.dataStorage(), first.host())
                    : Mapping.Zero.unreserved(offset, length);
            case DATA -> st.crypto != null ? new Mapping.Special(offset, length, ENCRYPTED)
                    : new Mapping.Data(offset, length, st.dataStorage(), first.host());
            case COMPRESSED -> new Mapping.Special(offset, length, "compressed");
        };
    }

    private static boolean hasHost(Kind kind) {
        return kind == Kind.DATA || kind == Kind.ZERO_ALLOC;
    }

    /** Classifies the unit (cluster or subcluster) containing guest offset {@code pos}; host is for {@code pos}. */
    Unit unit(long pos) throws IOException {
        long cluster = pos >>> clusterBits;
        long l1Index = cluster >>> l2Bits;
        long l2Span = 1L << (clusterBits + l2Bits);
        long[] l1 = st.l1;
        if (l1Index >= l1.length) {
            // a snapshot's L1 table may be shorter than its disk size needs: nothing is allocated there
            return new Unit(Kind.UNALLOCATED, -1, Long.MAX_VALUE, 0);
        }
        long l1e = l1[(int) l1Index];
        long l2Offset = l1e & OFFSET_MASK;
        if ((l1e & L1E_RESERVED) != 0) {
            throw new CorruptImageException(resource, st.l1Offset + l1Index * 8, "L1 entry "
                    + l1Index + " (0x" + Long.toHexString(l1e) + ") has reserved bits set");
        }
        if (l2Offset == 0) {
            return new Unit(Kind.UNALLOCATED, -1, (l1Index + 1) * l2Span, 0);
        }
        if ((l2Offset & (clusterSize - 1)) != 0) {
            throw new CorruptImageException(resource, st.l1Offset + l1Index * 8, "L2 table offset 0x"
                    + Long.toHexString(l2Offset) + " unaligned (L1 index " + l1Index + ")");
        }
        // an L2 table past the end of the file (a file cut short) reads as zeroes, as QEMU reads it
        long[] table = tables.table(l2Offset);
        int index = st.geometry.l2Index(cluster);
        long entry = table[extendedL2 ? 2 * index : index];
        long clusterStart = cluster << clusterBits;
        long clusterEnd = clusterStart + clusterSize;
        long inCluster = pos - clusterStart;
        if ((entry & COMPRESSED) != 0) {
            if (st.header.hasDataFile()) {
                throw corruptL2(l2Offset, index, entry, "compressed cluster in an image with an external data file");
            }
            if ((entry & COPIED) != 0) {
                throw corruptL2(l2Offset, index, entry, "compressed cluster has the COPIED flag");
            }
            // compressed data past the end of the file (a file cut short) maps as QEMU maps it; reading it fails
            return new Unit(Kind.COMPRESSED, -1, clusterEnd, entry);
        }
        long reserved = extendedL2 ? L2E_RESERVED | ZERO_FLAG : L2E_RESERVED;
        if ((entry & reserved) != 0) {
            throw corruptL2(l2Offset, index, entry, "reserved bits are set");
        }
        long host = entry & OFFSET_MASK;
        if (host != 0 || (st.header.hasDataFile() && (entry & COPIED) != 0)) {
            if (host >= MAX_HOST_OFFSET || (host & (clusterSize - 1)) != 0) {
                throw corruptL2(l2Offset, index, entry, "cluster offset 0x" + Long.toHexString(host) + " unaligned");
            }
            if (st.header.hasDataFile() && host != clusterStart) {
                // QEMU allocates data file clusters at their guest offset and refuses anything else
                throw corruptL2(l2Offset, index, entry, "external data file host cluster offset 0x"
                        + Long.toHexString(host) + " does not match guest cluster offset 0x"
                        + Long.toHexString(clusterStart));
            }
            // a data cluster past the end of the image or data file (a file cut short) reads as zeroes, as QEMU
            // reads it; a data file that cannot be opened fails here, as in QEMU's open
            if (st.header.hasDataFile()) {
                st.dataStorage();
            }
        }
        if (!extendedL2) {
            if ((entry & ZERO_FLAG) != 0) {
                return host != 0 ? new Unit(Kind.ZERO_ALLOC, host + inCluster, clusterEnd, entry)
                        : new Unit(Kind.ZERO_PLAIN, -1, clusterEnd, entry);
            }
            if (host == 0 && !(st.header.hasDataFile() && (entry & COPIED) != 0)) {
                return new Unit(Kind.UNALLOCATED, -1, clusterEnd, entry);
            }
            return new Unit(Kind.DATA, host + inCluster, clusterEnd, entry);
        }
        long bitmap = table[2 * index + 1];
        int sub = (int) (inCluster >>> unitBits);
        long subEnd = clusterStart + ((long) (sub + 1) << unitBits);
        boolean alloc = (bitmap & (1L << sub)) != 0;
        boolean zero = (bitmap & (1L << (32 + sub))) != 0;
        if (alloc && zero) {
            throw corruptL2(l2Offset, index, entry, "subcluster " + sub + " is both allocated and zero (bitmap 0x"
                    + Long.toHexString(bitmap) + ")");
        }
        boolean clusterAllocated = host != 0 || (st.header.hasDataFile() && (entry & COPIED) != 0);
        if (!clusterAllocated) {
            if (alloc) {
                throw corruptL2(l2Offset, index, entry, "subcluster " + sub
                        + " is allocated in a cluster without host offset");
            }
            return new Unit(zero ? Kind.ZERO_PLAIN : Kind.UNALLOCATED, -1, subEnd, entry);
        }
        if (zero) {
            return new Unit(Kind.ZERO_ALLOC, host + inCluster, subEnd, entry);
        }
        // an unallocated subcluster of an allocated cluster keeps its place in the cluster
        return new Unit(alloc ? Kind.DATA : Kind.UNALLOCATED, host + inCluster, subEnd, entry);
    }

    CorruptImageException corruptL2(long l2Offset, int index, long entry, String what) {
        return new CorruptImageException(resource, l2Offset, "L2 table at 0x" + Long.toHexString(l2Offset)
                + ", entry " + index + " (0x" + Long.toHexString(entry) + "): " + what);
    }

    /**
     * Where the extended L2 entry of guest cluster {@code cluster} is, and what it holds.
     *
     * @param l2Offset the L2 table, 0 if there is none
     * @param sharedL2 whether the table is shared with a snapshot (its L1 entry lacks COPIED)
     * @param entry the entry word (0 without a table)
     * @param bitmap the subcluster bitmap word (0 without a table)
     */
    record ExtendedSlot(long cluster, int l1Index, int index, long l2Offset, boolean sharedL2, long entry,
            long bitmap) {
    }

    /** The extended L2 entry for guest offset {@code pos}, validated (as {@link #unit}) before anything changes. */
    ExtendedSlot slot(long pos) throws IOException {
        unit(pos);
        long cluster = pos >>> clusterBits;
        int l1Index = st.geometry.l1Index(cluster);
        int index = st.geometry.l2Index(cluster);
        long l1e = st.l1[l1Index];
        long l2Offset = l1e & OFFSET_MASK;
        boolean sharedL2 = l2Offset != 0 && (l1e & COPIED) == 0;
        long entry = 0;
        long bitmap = 0;
        if (l2Offset != 0) {
            long[] table = tables.table(l2Offset);
            entry = table[2 * index];
            bitmap = table[2 * index + 1];
        }
        if (sharedL2 && (entry & COPIED) != 0) {
            throw corruptL2(l2Offset, index, entry, "COPIED set in an L2 table shared with a snapshot");
        }
        return new ExtendedSlot(cluster, l1Index, index, l2Offset, sharedL2, entry, bitmap);
    }
}
