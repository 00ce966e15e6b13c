package imago.qcow2.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Reads and edits the bytes of a qcow2 file in place, to damage images that qemu-img made: header
 * fields, L1 and L2 entries, refcount table entries and refcounts of every width.
 */
final class QcowBytes implements AutoCloseable {
    static final long OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00L;
    static final long COPIED = 1L << 63;

    private final FileChannel ch;
    final int clusterBits;
    final int clusterSize;
    final int order;
    final long l1Offset;
    final int l1Size;
    final long reftableOffset;
    final int reftableClusters;
    final long snapshotsOffset;
    /** Extended L2 entries: 16 bytes, the second word the subcluster bitmap. */
    final boolean extendedL2;

    QcowBytes(Path file) throws IOException {
        ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
        clusterBits = u32(20);
        clusterSize = 1 << clusterBits;
        l1Size = u32(36);
        l1Offset = u64(40);
        reftableOffset = u64(48);
        reftableClusters = u32(56);
        snapshotsOffset = u64(64);
        order = u32(4) >= 3 ? u32(96) : 4;
        extendedL2 = u32(4) >= 3 && (u64(72) & (1L << 4)) != 0;
    }

    long u64(long at) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN);
        ch.read(b, at);
        return b.getLong(0);
    }

    void u64(long at, long v) throws IOException {
        ch.write(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, v), at);
    }

    int u32(long at) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.BIG_ENDIAN);
        ch.read(b, at);
        return b.getInt(0);
    }

    void u32(long at, int v) throws IOException {
        ch.write(ByteBuffer.allocate(4).order(ByteOrder.BIG_ENDIAN).putInt(0, v), at);
    }

    long l1(int i) throws IOException {
        return u64(l1Offset + i * 8L);
    }

    void l1(int i, long v) throws IOException {
        u64(l1Offset + i * 8L, v);
    }

    /** The L2 entry for guest cluster {@code g} (standard 8-byte entries). */
    long l2(long g) throws IOException {
        return u64(l2At(g));
    }

    void l2(long g, long v) throws IOException {
        u64(l2At(g), v);
    }

    /** The subcluster bitmap of guest cluster {@code g} (extended L2 only). */
    long bitmap(long g) throws IOException {
        return u64(l2At(g) + 8);
    }

    void bitmap(long g, long v) throws IOException {
        u64(l2At(g) + 8, v);
    }

    private long l2At(long g) throws IOException {
        int l2Bits = clusterBits - (extendedL2 ? 4 : 3);
        long l2 = l1((int) (g >>> l2Bits)) & OFFSET_MASK;
        if (l2 == 0) {
            throw new IllegalStateException("guest cluster " + g + " has no L2 table");
        }
        return l2 + (g & ((1L << l2Bits) - 1)) * (extendedL2 ? 16 : 8);
    }

    /** The host cluster index of guest cluster {@code g}'s data. */
    long dataCluster(long g) throws IOException {
        return (l2(g) & OFFSET_MASK) >>> clusterBits;
    }

    long reftable(int i) throws IOException {
        return u64(reftableOffset + i * 8L);
    }

    void reftable(int i, long v) throws IOException {
        u64(reftableOffset + i * 8L, v);
    }

    private int blockBits() {
        return clusterBits + 3 - order;
    }

    long refcount(long cluster) throws IOException {
        long block = reftable((int) (cluster >>> blockBits()));
        if (block == 0) {
            return 0;
        }
        Qcow2RefBlock b = readBlock(block);
        return b.get((int) (cluster & ((1L << blockBits()) - 1)));
    }

    void refcount(long cluster, long v) throws IOException {
        long block = reftable((int) (cluster >>> blockBits()));
        Qcow2RefBlock b = readBlock(block);
        b.set((int) (cluster & ((1L << blockBits()) - 1)), v);
        ch.write(ByteBuffer.wrap(b.bytes()), block);
    }

    private Qcow2RefBlock readBlock(long offset) throws IOException {
        byte[] bytes = new byte[clusterSize];
        ch.read(ByteBuffer.wrap(bytes), offset);
        return new Qcow2RefBlock(bytes, order);
    }

    void u16(long at, int v) throws IOException {
        ch.write(ByteBuffer.allocate(2).order(ByteOrder.BIG_ENDIAN).putShort(0, (short) v), at);
    }

    /** Where snapshot table entry {@code i} starts (entries are 8-byte aligned). */
    long snapshotEntry(int i) throws IOException {
        long at = snapshotsOffset;
        for (int k = 0; k < i; k++) {
            long length = 40L + Integer.toUnsignedLong(u32(at + 36)) + (u32(at + 12) >>> 16) + (u32(at + 12) & 0xFFFF);
            at += (length + 7) & ~7L;
        }
        return at;
    }

    byte[] read(long at, int n) throws IOException {
        byte[] b = new byte[n];
        ch.read(ByteBuffer.wrap(b), at);
        return b;
    }

    void write(long at, byte[] b) throws IOException {
        ch.write(ByteBuffer.wrap(b), at);
    }

    /**
     * Moves the snapshot table to a new cluster at the end of the file, refcounts kept right, and cuts the
     * file {@code keep} bytes into it.
     */
    void cutSnapshotTable(int keep) throws IOException {
        byte[] table = read(snapshotsOffset, keep);
        long c = growFile();
        write(c << clusterBits, table);
        refcount(c, 1);
        refcount(snapshotsOffset >>> clusterBits, 0);
        u64(64, c << clusterBits);
        truncate((c << clusterBits) + keep);
    }

    long fileSize() throws IOException {
        return ch.size();
    }

    void truncate(long size) throws IOException {
        ch.truncate(size);
    }

    long fileClusters() throws IOException {
        return (ch.size() + clusterSize - 1) >>> clusterBits;
    }

    /** The first cluster at or after {@code from} with refcount 0, inside the file. */
    long freeCluster(long from) throws IOException {
        for (long c = from; c < fileClusters(); c++) {
            if (refcount(c) == 0) {
                return c;
            }
        }
        throw new IllegalStateException("no free cluster inside the file");
    }

    /** Grows the file by one zero cluster and returns its index. */
    long growFile() throws IOException {
        long c = fileClusters();
        ch.write(ByteBuffer.allocate(clusterSize), c << clusterBits);
        return c;
    }

    @Override
    public void close() throws IOException {
        ch.close();
    }
}
