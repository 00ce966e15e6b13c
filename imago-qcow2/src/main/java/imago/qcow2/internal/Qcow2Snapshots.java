package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COPIED;

import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.SnapshotInfo;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.InternalSnapshots;
import imago.qcow2.internal.Qcow2SnapshotRefs.Refs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.stream.LongStream;

/**
 * Internal snapshots, created, deleted and applied as QEMU's qcow2-snapshot.c does. Each operation first flushes
 * (pending refcount drops) and excludes every write ({@link Qcow2Claims#exclusively}). Creating: the
 * snapshot's L1 copy and the new snapshot table are written, every path from the active L1 table gains a reference
 * and the active tables lose their COPIED flags, all synced before the header's nb_snapshots and snapshots_offset
 * (one write) switch to the new table; the old table is freed after that sync. Deleting: the table without the
 * entry is written and switched to (synced) before the snapshot's L1 table and paths lose their references; COPIED
 * flags are then set where a refcount returned to 1. Applying: the references only the snapshot holds are added and
 * the new active L1 table (in place, or new clusters when it must grow) written and synced, then the header's size,
 * l1_size and l1_table_offset (one write) synced, before the references only the old active table held drop
 * ({@link Qcow2SnapshotRefs} says what a crash in between leaves). Freed clusters are discarded and forgotten by the
 * L2 cache.
 */
final class Qcow2Snapshots extends Qcow2Room implements InternalSnapshots {
    private final Qcow2Tables tables;
    private final Qcow2Claims claims;
    private final Qcow2WriteBack writeBack;
    private final Qcow2CompressedReads compressedReads;
    private final Qcow2SnapshotRefs refs;

    Qcow2Snapshots(Qcow2State st, Qcow2Tables tables, Qcow2Claims claims, Qcow2Mapping mapping,
            Qcow2WriteBack writeBack, Qcow2CompressedReads compressedReads) {
        super(st);
        this.tables = tables;
        this.claims = claims;
        this.writeBack = writeBack;
        this.compressedReads = compressedReads;
        this.refs = new Qcow2SnapshotRefs(st, tables, mapping);
    }

    private <T> T exclusively(Qcow2Claims.TableAction<T> action) throws IOException {
        return claims.exclusively(writeBack::flush, action);
    }

    /** The internal snapshots, oldest first. */
    @Override
    public List<SnapshotInfo> list() {
        return st.snapshots.stream().map(Qcow2Snapshot::info).toList();
    }

    /**
     * Creates an internal snapshot ({@link InternalSnapshots#create}) as QEMU's qcow2_snapshot_create: the active L1 table is copied to new clusters, every path
     * from it (each L2 table and each cluster its entries reach) gains a reference, the COPIED flags of the active
     * tables are cleared (everything is shared now) and a new snapshot table with the entry appended replaces the
     * old one. The id is the largest numeric id plus one; date now, VM clock and VM state 0, the extra data holds
     * the disk size. Everything is written and synced before the header points at the new table; the old table
     * is freed afterwards. Refused before anything changes when a refcount would overflow (1-bit refcounts).
     */
    @Override
    public SnapshotInfo create(String name) throws IOException {
        Objects.requireNonNull(name, "name");
        st.requireWritable(-1);
        if (st.header.hasDataFile()) {
            // QEMU refuses too: the data file's clusters are not refcounted, so they cannot be shared
            throw new UnsupportedFeatureException(resource, Feature.EXTERNAL_DATA_FILE, "qcow2 snapshots with an external data file",
                    "internal snapshots of images with an external data file are not supported");
        }
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        if (nameBytes.length > 0xFFFF) {
            throw new IllegalArgumentException(resource + ": a snapshot name is at most 65535 bytes long (UTF-8), got "
                    + nameBytes.length);
        }
        return exclusively(() -> createLocked(nameBytes));
    }

    private SnapshotInfo createLocked(byte[] name) throws IOException {
        List<Qcow2Snapshot> list = st.snapshots;
        if (list.size() >= Qcow2Header.MAX_SNAPSHOTS) {
            throw new ImageLimitException(resource, 60, "the image has the maximum of " + Qcow2Header.MAX_SNAPSHOTS
                    + " snapshots");
        }
        long[] active = st.l1;
        Refs paths = i -> refs.subtree(active, i, true);
        refs.checkEach(active.length, paths, 1);
        List<byte[]> entries = Qcow2Snapshot.rawEntries(storage, list);
        long[] oldTable = st.geometry.tableClusters(st.snapshotsOffset, Qcow2Snapshot.paddedLength(entries));
        st.refcounts.checkAdjust(oldTable, -1);
        Instant now = Instant.now();
        int l1Clusters = st.geometry.clustersFor(active.length * 8L);
        long l1Off = 0;
        if (l1Clusters > 0) {
            // qemu-img check counts l1_size * 8 bytes from the offset: an empty L1 table has offset 0 and no cluster
            l1Off = st.refcounts.allocateRun(l1Clusters) << clusterBits;
            ByteBuffer t = ByteBuffer.allocate(l1Clusters * clusterSize).order(ByteOrder.BIG_ENDIAN);
            for (long e : active) {
                t.putLong(e & ~COPIED);
            }
            storage.write(t.clear(), l1Off);
            st.growFile(l1Off + (long) l1Clusters * clusterSize);
        }
        entries.add(Qcow2Snapshot.encode(l1Off, active.length, Qcow2Snapshot.nextSnapshotId(list), name, now, st.size));
        long newTable;
        try {
            newTable = allocateTable(entries);
        } catch (IOException | RuntimeException e) {
            // nothing points at the new L1 copy yet: give its clusters back
            tables.freeClusters(st.refcounts.adjust(st.geometry.tableClusters(l1Off, active.length * 8L), -1));
            throw e;
        }
        // each path from the active L1 gains the snapshot's reference; nothing the active image reaches is its own
        // alone any more, so no COPIED flag stays (as qemu's qcow2_update_snapshot_refcount with addend 1)
        try {
            refs.adjustEach(active.length, paths, 1);
        } catch (IOException | RuntimeException e) {
            tables.freeClusters(st.refcounts.adjust(st.geometry.tableClusters(l1Off, active.length * 8L), -1));
            tables.freeClusters(st.refcounts.adjust(st.geometry.tableClusters(newTable, Qcow2Snapshot.paddedLength(entries)), -1));
            throw e;
        }
        refs.clearCopied();
        switchSnapshotTable(entries, newTable);
        tables.freeClusters(st.refcounts.adjust(oldTable, -1));
        return st.snapshots.getLast().info();
    }

    /**
     * Deletes an internal snapshot ({@link InternalSnapshots#delete}) as QEMU's qcow2_snapshot_delete: the new snapshot table without the entry is written and the
     * header switched to it (synced), then the snapshot's L1 table, every path from it and the old table lose their
     * reference; freed clusters are discarded. COPIED flags of the active tables are set again where a refcount
     * returned to 1.
     */
    @Override
    public void delete(String idOrName) throws IOException {
        Objects.requireNonNull(idOrName, "idOrName");
        st.requireWritable(-1);
        exclusively(() -> {
            deleteLocked(idOrName);
            return null;
        });
    }

    private void deleteLocked(String idOrName) throws IOException {
        List<Qcow2Snapshot> list = st.snapshots;
        int index = Qcow2Snapshot.find(list, idOrName, resource);
        Qcow2Snapshot sn = list.get(index);
        long[] snL1 = Qcow2Tables.readTable(storage, sn.l1TableOffset(), sn.l1Size());
        Refs paths = i -> refs.subtree(snL1, i, false);
        refs.checkEach(snL1.length, paths, -1);
        List<byte[]> entries = Qcow2Snapshot.rawEntries(storage, list);
        long[] oldTables = LongStream.concat(
                Arrays.stream(st.geometry.tableClusters(sn.l1TableOffset(), sn.l1Size() * 8L)),
                Arrays.stream(st.geometry.tableClusters(st.snapshotsOffset, Qcow2Snapshot.paddedLength(entries)))).sorted().toArray();
        st.refcounts.checkAdjust(oldTables, -1);
        entries.remove(index);
        long newTable = allocateTable(entries);
        switchSnapshotTable(entries, newTable);
        tables.freeClusters(refs.adjustEach(snL1.length, paths, -1));
        tables.freeClusters(st.refcounts.adjust(oldTables, -1));
        refs.recomputeCopied();
        st.syncAll();
    }

    /**
     * Reverts to an internal snapshot ({@link InternalSnapshots#apply}) as QEMU's qcow2_snapshot_goto: every path from the snapshot's L1 table gains a reference (only
     * those the active L1 table does not hold already: unlike qemu, a refcount at its maximum does not make this
     * fail), the active L1 table (in place, or moved to new clusters when it is too small) becomes a copy of the snapshot's,
     * synced, and the header takes the snapshot's disk size; then every path from the old active L1 table loses its
     * reference and the COPIED flags are recomputed. The snapshot stays.
     */
    @Override
    public void apply(String idOrName) throws IOException {
        Objects.requireNonNull(idOrName, "idOrName");
        st.requireWritable(-1);
        exclusively(() -> {
            applyLocked(idOrName);
            return null;
        });
    }

    private void applyLocked(String idOrName) throws IOException {
        if (!st.bitmaps.isEmpty()) {
            // QEMU's bdrv_snapshot_goto refuses too: the bitmaps cannot describe a change of the whole disk
            throw new UnsupportedFeatureException(resource, Feature.PERSISTENT_BITMAPS, "qcow2 snapshot apply with bitmaps",
                    "Device has active dirty bitmaps");
        }
        List<Qcow2Snapshot> list = st.snapshots;
        Qcow2Snapshot sn = list.get(Qcow2Snapshot.find(list, idOrName, resource));
        long newSize = sn.diskSize() >= 0 ? sn.diskSize() : st.size;
        long[] snL1 = Qcow2Tables.readTable(storage, sn.l1TableOffset(), sn.l1Size());
        long[] old = st.l1;
        long oldOffset = st.l1Offset;
        // a reference both L1 tables hold is held all along: only the differences change (so that a cluster whose
        // refcount is at the maximum already does not have to go past it for a moment); the same L2 table under
        // an index holds the same references
        int span = Math.max(snL1.length, old.length);
        Refs gains = i -> Qcow2SnapshotRefs.sameTable(snL1, old, i) ? Qcow2SnapshotRefs.NONE
                : Qcow2SnapshotRefs.difference(refs.subtree(snL1, i, false), refs.subtree(old, i, true))[0];
        Refs losses = i -> Qcow2SnapshotRefs.sameTable(snL1, old, i) ? Qcow2SnapshotRefs.NONE
                : Qcow2SnapshotRefs.difference(refs.subtree(snL1, i, false), refs.subtree(old, i, true))[1];
        refs.checkEach(span, gains, 1);
        long needed = Qcow2Header.l1EntriesFor(newSize, clusterBits, l2Bits);
        long entries = Math.max(Math.max(old.length, snL1.length), needed);
        if (entries * 8 > Qcow2Header.MAX_L1_BYTES) {
            throw new ImageLimitException(resource, 36, "the snapshot needs an L1 table of " + entries
                    + " entries: Active L1 table too large");
        }
        int oldClusters = st.geometry.clustersFor(old.length * 8L);
        int clusters = st.geometry.clustersFor(entries * 8);
        boolean move = clusters > oldClusters;
        long newOffset = move ? st.refcounts.allocateRun(clusters) << clusterBits : oldOffset;
        long[] next = new long[(int) entries];
        for (int i = 0; i < snL1.length; i++) {
            next[i] = snL1[i] & ~COPIED;
        }
        try {
            refs.adjustEach(span, gains, 1);
        } catch (IOException | RuntimeException e) {
            if (move) {
                tables.freeClusters(st.refcounts.adjust(st.geometry.tableClusters(newOffset, (long) clusters * clusterSize), -1));
            }
            throw e;
        }
        // the references (and a moved table's own refcounts, cached write-back) must be on stable media before the
        // L1 table (which points when written in place) changes
        st.refcounts.writeDirty();
        st.syncAll();
        ByteBuffer t = ByteBuffer.allocate(move ? clusters * clusterSize : next.length * 8).order(ByteOrder.BIG_ENDIAN);
        t.asLongBuffer().put(next);
        storage.write(t, newOffset);
        st.growFile(newOffset + t.capacity());
        // the new L1 table is on stable media before the header names it or its size
        st.syncAll();
        if (move || newSize != st.size || next.length != old.length) {
            Qcow2HeaderFields.writeSizeAndL1(storage, newSize, st.header.cryptMethod(), next.length, newOffset);
            st.syncAll();
        }
        st.l1 = next;
        st.l1Offset = newOffset;
        st.size = newSize;
        compressedReads.forget();
        tables.freeClusters(refs.adjustEach(span, losses, -1));
        if (move) {
            tables.freeClusters(st.refcounts.adjust(st.geometry.tableClusters(oldOffset, old.length * 8L), -1));
        }
        refs.recomputeCopied();
        st.syncAll();
    }

    /** Allocates the clusters of a snapshot table of {@code entries}; 0 for none. */
    private long allocateTable(List<byte[]> entries) throws IOException {
        long bytes = Qcow2Snapshot.paddedLength(entries);
        if (bytes > Qcow2Header.MAX_SNAPSHOTS_BYTES) {
            throw new ImageLimitException(resource, 64, "Snapshot table too large (" + bytes + " bytes)");
        }
        return bytes == 0 ? 0 : st.refcounts.allocateRun(st.geometry.clustersFor(bytes)) << clusterBits;
    }

    /**
     * Writes the snapshot table of {@code entries} at {@code offset} (allocated), syncs (with everything written
     * before), points the header at it and syncs again. The old table's clusters are the caller's to free.
     */
    private void switchSnapshotTable(List<byte[]> entries, long offset) throws IOException {
        long bytes = Qcow2Snapshot.paddedLength(entries);
        List<Qcow2Snapshot> records = new ArrayList<>(entries.size());
        if (bytes > 0) {
            ByteBuffer t = ByteBuffer.allocate(st.geometry.clustersFor(bytes) * clusterSize);
            for (byte[] e : entries) {
                int at = t.position();
                t.put(e);
                t.position((t.position() + 7) & ~7);
                records.add(Qcow2Snapshot.parse(ByteBuffer.wrap(e), resource, offset + at));
            }
            storage.write(t.clear(), offset);
            st.growFile(offset + t.capacity());
        }
        // the refcounts of the new L1 copy and table (cached write-back) reach the disk with them
        st.refcounts.writeDirty();
        st.syncAll();
        Qcow2HeaderFields.writeSnapshotTable(storage, entries.size(), offset);
        st.syncAll();
        st.snapshots = List.copyOf(records);
        st.snapshotsOffset = offset;
    }
}
