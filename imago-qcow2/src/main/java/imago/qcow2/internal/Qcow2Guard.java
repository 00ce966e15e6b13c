package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;

import imago.api.CorruptImageException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Metadata is never overwritten with guest data, as QEMU's metadata overlap check ensures: a writable open refuses
 * an image whose metadata (header, L1 and L2 tables, refcount table and blocks, snapshot table and the snapshots'
 * L1 and L2 tables, bitmap directory and tables) has a cluster with refcount 0, which the allocator could hand out
 * ({@link #verifyMetadataCounted}); and before guest data goes in place into the host cluster of an L2 entry, the
 * cluster must be counted and must not be metadata (QEMU's default "cached" checks, {@link #guardInPlace}). A
 * damaged entry that fails this marks the image corrupt (the header's corrupt bit, synced), with QEMU's message,
 * and the instance takes no more writes.
 */
final class Qcow2Guard extends Qcow2Room {

    Qcow2Guard(Qcow2State st) {
        super(st);
    }

    /**
     * Refuses a writable open of an image whose metadata has a cluster with refcount 0: the allocator
     * would hand that cluster out and overwrite the metadata (QEMU's overlap check would stop the write
     * and mark the image corrupt). Guest data clusters are checked when they are written in place.
     */
    void verifyMetadataCounted() throws IOException {
        counted(0, clusterSize, "header");
        counted(st.l1Offset, st.l1.length * 8L, "active L1 table");
        counted(st.refcounts.tableOffset(), st.refcounts.tableBytes(), "refcount table");
        for (long b : st.refcounts.blockOffsets()) {
            counted(b, clusterSize, "refcount block");
        }
        if (st.tracker != null) {
            for (long[] e : st.tracker.extents()) {
                counted(e[0], e[1], "bitmap directory or table");
            }
        }
        for (long e : st.l1) {
            counted(e & OFFSET_MASK, clusterSize, "active L2 table");
        }
        if (!st.snapshots.isEmpty()) {
            counted(st.snapshotsOffset, snapshotTableBytes(st.snapshots), "snapshot table");
            for (Qcow2Snapshot sn : st.snapshots) {
                counted(sn.l1TableOffset(), sn.l1Size() * 8L, "snapshot L1 table");
                for (long e : Qcow2Tables.readTable(storage, sn.l1TableOffset(), sn.l1Size())) {
                    counted(e & OFFSET_MASK, clusterSize, "snapshot L2 table");
                }
            }
        }
    }

    private void counted(long offset, long bytes, String what) throws IOException {
        if (offset == 0 && !what.equals("header") || bytes <= 0) {
            return;
        }
        for (long c = offset >>> clusterBits; c <= (offset + bytes - 1) >>> clusterBits; c++) {
            if (st.refcounts.get(c) == 0) {
                throw new CorruptImageException(resource, c << clusterBits, "the " + what + " at 0x"
                        + Long.toHexString(offset) + " has a cluster with refcount 0: the refcounts are damaged "
                        + "(imago check -r all repairs them)");
            }
        }
    }

    /**
     * QEMU's metadata overlap check (qcow2_pre_write_overlap_check, its default "cached" checks) before
     * guest data goes in place into host cluster {@code host} of an L2 entry: the cluster must be counted
     * and must not hold metadata. On a damaged image that points guest data at metadata the image is
     * marked corrupt, as QEMU marks it, and the write fails without writing anything.
     */
    void guardInPlace(long host) throws IOException {
        if (st.header.hasDataFile()) {
            // guest data lives in the data file, metadata in this one
            return;
        }
        String what = metadataAt(host);
        if (what == null && st.refcounts.get(host >>> clusterBits) == 0) {
            what = "a cluster whose refcount is 0";
        }
        if (what != null) {
            String message = "Preventing invalid write on metadata (overlaps with " + what + ")";
            if (st.header.version() >= 3) {
                long features = Qcow2HeaderFields.readIncompatible(storage) | Qcow2Header.INCOMPAT_CORRUPT;
                Qcow2HeaderFields.writeIncompatible(storage, features);
                storage.flush();
                storage.sync();
                // later header writes (a lazy image marked clean on close) keep the bit
                st.header = st.header.withIncompatibleFeatures(features);
            }
            st.corrupted = message;
            throw new CorruptImageException(resource, host, "Marking image as corrupt: " + message
                    + "; further corruption events will be suppressed");
        }
    }

    /** The kind of metadata in the host cluster at {@code host}, in QEMU's words; null for none. */
    private String metadataAt(long host) throws IOException {
        long c = host >>> clusterBits;
        if (c == 0) {
            return "qcow2_header";
        }
        if (inTable(c, st.l1Offset, st.l1.length * 8L)) {
            return "active L1 table";
        }
        if (inTable(c, st.refcounts.tableOffset(), st.refcounts.tableBytes())) {
            return "refcount table";
        }
        if (st.refcounts.isBlock(c << clusterBits)) {
            return "refcount block";
        }
        List<Qcow2Snapshot> list = st.snapshots;
        if (!list.isEmpty()) {
            if (inTable(c, st.snapshotsOffset, snapshotTableBytes(list))) {
                return "snapshot table";
            }
            for (Qcow2Snapshot sn : list) {
                if (inTable(c, sn.l1TableOffset(), sn.l1Size() * 8L)) {
                    return "inactive L1 table";
                }
            }
        }
        long at = c << clusterBits;
        for (long e : st.l1) {
            if ((e & OFFSET_MASK) == at) {
                return "active L2 table";
            }
        }
        if (st.tracker != null && st.tracker.inDirectory(c, clusterBits)) {
            return "bitmap directory";
        }
        return null;
    }

    /** The bytes of the snapshot table {@code list} was read from (its entries are contiguous), cached. */
    private long snapshotTableBytes(List<Qcow2Snapshot> list) throws IOException {
        SnapshotTableExtent known = snapshotTableExtent;
        if (known != null && known.list() == list) {
            return known.bytes();
        }
        Qcow2Snapshot last = list.getLast();
        ByteBuffer fixed = ByteBuffer.allocate(Qcow2Snapshot.FIXED).order(ByteOrder.BIG_ENDIAN);
        storage.read(fixed, last.entryOffset());
        long bytes = last.entryOffset() + Qcow2Snapshot.entryLength(fixed) - list.getFirst().entryOffset();
        snapshotTableExtent = new SnapshotTableExtent(list, bytes);
        return bytes;
    }

    private record SnapshotTableExtent(List<Qcow2Snapshot> list, long bytes) {
    }

    private volatile SnapshotTableExtent snapshotTableExtent;

    /** Whether host cluster {@code c} holds part of the table of {@code bytes} bytes at {@code offset}. */
    private boolean inTable(long c, long offset, long bytes) {
        return offset != 0 && bytes > 0 && c >= offset >>> clusterBits && c <= (offset + bytes - 1) >>> clusterBits;
    }
}
