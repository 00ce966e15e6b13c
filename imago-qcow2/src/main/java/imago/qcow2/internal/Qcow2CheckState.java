package imago.qcow2.internal;

import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * The image as {@link Qcow2Check} and {@link Qcow2Rebuild} see it: the header and what it points at, read leniently
 * (damage is for the check to count, never thrown), and the on-disk refcounts read one block at a time.
 */
final class Qcow2CheckState {
    /** Refcount table entry: bits 0-8 are reserved. */
    static final long REFT_RESERVED = 0x1FFL;
    static final long REFT_OFFSET_MASK = ~0x1FFL;

    private final Storage storage;
    final Qcow2Header header;
    final int clusterBits;
    final int clusterSize;
    final int order;
    final long refcountMax;
    final int blockBits;
    final boolean extendedL2;
    final int l2Entries;
    long fileSize;
    long[] reftable;
    final List<Qcow2Snapshot> snapshots;
    final long snapshotsSize;
    /** The snapshot table as read, with the damage it counts itself. */
    final Qcow2Snapshot.CheckRead table;
    /** The refcount block last read, with its offset (-1 for none). */
    private long blockOffset = -1;
    private Qcow2RefBlock block;

    Qcow2CheckState(Storage storage, Qcow2Header header, long fileSize, Qcow2Snapshot.CheckRead table)
            throws IOException {
        this.storage = storage;
        this.header = header;
        this.clusterBits = header.clusterBits();
        this.clusterSize = header.clusterSize();
        this.order = header.refcountOrder();
        this.refcountMax = order == 6 ? -1L : (1L << (1 << order)) - 1;
        this.blockBits = clusterBits + 3 - order;
        this.extendedL2 = header.extendedL2();
        this.l2Entries = 1 << header.l2Bits();
        this.fileSize = fileSize;
        this.snapshots = table.entries();
        this.snapshotsSize = table.size();
        this.table = table;
        int entries = (int) ((long) header.refcountTableClusters() * clusterSize / 8);
        this.reftable = readLongs(header.refcountTableOffset(), entries);
    }

    boolean hasDataFile() {
        return header.hasDataFile();
    }

    /** Whether the refcount of {@code cluster} can be read: its refcount block, if any, is aligned. */
    boolean readable(long cluster) {
        long index = cluster >>> blockBits;
        if (index >= reftable.length) {
            return true;
        }
        long off = reftable[(int) index] & REFT_OFFSET_MASK;
        // an offset past 2^63 cannot be read at all (QEMU's read fails too)
        return (off & (clusterSize - 1)) == 0 && off >= 0;
    }

    /** The on-disk refcount of a {@link #readable} {@code cluster} (0 where no block covers it). */
    long refcount(long cluster) throws IOException {
        long index = cluster >>> blockBits;
        if (index >= reftable.length) {
            return 0;
        }
        long off = reftable[(int) index] & REFT_OFFSET_MASK;
        if (off == 0) {
            return 0;
        }
        return block(off).get((int) (cluster & ((1L << blockBits) - 1)));
    }

    private Qcow2RefBlock block(long off) throws IOException {
        if (off != blockOffset) {
            byte[] bytes = new byte[clusterSize];
            storage.read(ByteBuffer.wrap(bytes), off);
            block = new Qcow2RefBlock(bytes, order);
            blockOffset = off;
        }
        return block;
    }

    /** Writes the refcount of {@code cluster} through (its block exists and is aligned). */
    void setRefcount(long cluster, long value) throws IOException {
        long off = reftable[(int) (cluster >>> blockBits)] & REFT_OFFSET_MASK;
        Qcow2RefBlock b = block(off);
        int i = (int) (cluster & ((1L << blockBits) - 1));
        b.set(i, value);
        storage.write(ByteBuffer.wrap(b.bytes(), b.byteOffset(i), b.byteLength()), off + b.byteOffset(i));
    }

    void forgetBlocks() {
        blockOffset = -1;
        block = null;
    }

    /** Reads {@code n} big-endian longs from {@code offset}; bytes past the end of the file read as zero. */
    long[] readLongs(long offset, int n) throws IOException {
        if (offset < 0 || offset > Long.MAX_VALUE - n * 8L) {
            return new long[n];
        }
        return Qcow2Tables.readTable(storage, offset, n);
    }
}
