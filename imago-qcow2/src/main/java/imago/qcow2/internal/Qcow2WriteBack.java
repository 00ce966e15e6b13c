package imago.qcow2.internal;

import imago.api.Preallocation;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.BitSet;
import java.util.List;
import java.util.Map;

/**
 * Writes the cached metadata back in dependency order, and keeps the dirty bit of lazy refcounts.
 *
 * <p>Refcount blocks and L2 tables are cached write-back, as QEMU caches them, and written in dependency order:
 * refcount blocks first, then a sync (which also makes the data written into new clusters, copied parts included,
 * durable), then the changed L2 tables; that happens on flush and whenever more than 32 MiB of L2 tables are dirty.
 * A refcount block may be written earlier (evicted) at any time: an increment on disk before its reference can only
 * leak. A new L2 table (zeroed or copied from a table shared with a snapshot) is written at once, but its L1 entry
 * is cached too and written last, after a second sync: refcounts, sync, L2 tables, sync, L1 entries. An entry that
 * drops a reference (zeroing, discard, rewriting a compressed or shared cluster, copying a shared L2 table, moving
 * the L1 table) changes first; the refcount drops on the next flush, after the tables are written and synced,
 * while in-place writes are excluded. When a flush fails, writes since the last successful flush may be lost; the
 * image stays consistent.
 *
 * <p>Lazy refcounts (compatible bit 0, as QEMU's lazy_refcounts=on): before the first write-back of L2 tables or
 * L1 entries with refcount changes waiting (allocations; zero writes and discards alone leave the image clean, as
 * in QEMU) the dirty bit (incompatible bit 0) is written and synced (QEMU's qcow2_mark_dirty, done once per
 * session), and from then on the refcount blocks are not written by flushes: they wait in memory (written only
 * when evicted or by a sync of one of the other operations, always safe) and the sync between them and the L2
 * tables is left out, unless copy-on-write filled new clusters since the last one (the copied parts must be
 * durable before an entry points at them, as QEMU's perform_cow orders) or the file grew (an entry past the end
 * of the file cannot be repaired). So that growth rarely needs that sync, the file is then grown ahead (sparse, by
 * an eighth, at least 8 MiB, at most 256 MiB) before it: sequential allocating writes flushed one by one take one
 * sync per flush, as in QEMU, instead of two. New L2 tables are still synced before their L1 entries, and a
 * refcount still drops only after the L2 update that dropped the reference is synced. A clean close (after the
 * caller's flush and sync) writes the tables and every refcount block, cuts the file after its last cluster in use
 * (as before a resize), syncs, clears the dirty bit and syncs again (QEMU's qcow2_mark_clean in
 * qcow2_inactivate); a close that fails leaves the bit set (and a crash the sparse tail, which nothing refers to).
 * Resizing, snapshot operations and the other operations that sync through their own steps still write the
 * refcounts first ({@link Qcow2State#syncAll}), so their ordering holds with or without the bit. A dirty image
 * opened writable is repaired first ({@link Qcow2Opening}), so a crash while dirty costs a refcount rebuild, never
 * a reference or a synced byte.
 */
final class Qcow2WriteBack extends Qcow2Room {
    private final Qcow2Tables tables;
    private final Qcow2Claims claims;
    private final Qcow2CompressedReads compressedReads;
    private final Map<Long, long[]> dirtyL2;
    private final BitSet dirtyL1;
    private final List<Long> pendingDecrefs;
    /**
     * Whether copy-on-write wrote into new clusters since {@link #writeBack} last synced, and how long the file
     * was then: with lazy refcounts that sync is needed only for copied data and for the file's growth, since an
     * L2 entry past the end of the file is beyond repair (guarded by the allocation lock).
     */
    private boolean copiedSinceSync;
    private long syncedLength;
    /** Whether the file was grown past its last cluster in use ({@link #writeBack}, lazy refcounts). */
    private boolean grownAhead;

    Qcow2WriteBack(Qcow2State st, Qcow2Tables tables, Qcow2Claims claims, Qcow2CompressedReads compressedReads) {
        super(st);
        this.tables = tables;
        this.claims = claims;
        this.compressedReads = compressedReads;
        this.dirtyL2 = tables.dirtyL2();
        this.dirtyL1 = tables.dirtyL1();
        this.pendingDecrefs = tables.pendingDecrefs();
        this.syncedLength = st.fileSize;
        tables.writeBackWith(this::writeBack);
    }

    /** Copy-on-write filled new clusters: the next write-back syncs before its L2 tables. Under the allocation lock. */
    void copied() {
        copiedSinceSync = true;
    }

    /** The file may have been cut or replaced: the next write-back syncs before its L2 tables. */
    void forgetSyncedLength() {
        syncedLength = 0;
    }

    /**
     * Writes the cached metadata in dependency order: refcount blocks, then (after a sync that also
     * covers the data written into new clusters) the dirty L2 tables, then (after another sync) the L1
     * entries of new L2 tables. With lazy refcounts (as QEMU's qcow2_alloc_cluster_link_l2 and
     * qcow2_write_caches), the image is marked dirty (synced) before its first L2 update instead, the
     * refcount blocks wait in memory (until evicted, or {@link #close}), and the first sync is left out
     * unless copy-on-write filled new clusters (QEMU's perform_cow makes the L2 cache depend on a flush) or
     * the file grew (then grown further ahead, so that the next ones need none). Under allocLock.
     */
    void writeBack() throws IOException {
        // (with no refcount change waiting, as after zero writes and discards only, there is nothing to be lazy
        // about: QEMU marks the image dirty on allocating writes only)
        if (st.lazyRefcounts() && (st.refcountsStale() || st.refcounts.hasDirty())) {
            if (dirtyL2.isEmpty() && dirtyL1.isEmpty()) {
                return;
            }
            markDirty();
        } else {
            st.refcounts.writeDirty();
            if (dirtyL2.isEmpty() && dirtyL1.isEmpty()) {
                return;
            }
        }
        long length = storage.size();
        if (!st.refcountsStale() || copiedSinceSync || length > syncedLength) {
            if (st.refcountsStale() && length > syncedLength) {
                // the file's growth must be durable before entries point into it: grow it ahead (sparse), so
                // that this sync covers the next write-backs' growth too and they need none (as QEMU's lazy
                // mode needs none); a clean close cuts what is left unused
                long ahead = Math.min(Math.max(length >>> 3, 8L << 20), 256L << 20);
                length = (length + ahead + clusterSize - 1) & -(long) clusterSize;
                storage.resize(length, Preallocation.OFF);
                grownAhead = true;
            }
            st.syncMetadata();
        }
        copiedSinceSync = false;
        syncedLength = length;
        ByteBuffer b = ByteBuffer.allocate(clusterSize).order(ByteOrder.BIG_ENDIAN);
        for (var it = dirtyL2.entrySet().iterator(); it.hasNext(); ) {
            var e = it.next();
            b.clear().asLongBuffer().put(e.getValue());
            storage.write(b, e.getKey());
            it.remove();
        }
        if (!dirtyL1.isEmpty()) {
            // new L2 tables (and their entries) are on stable media before an L1 entry points at them
            st.syncMetadata();
            ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN);
            for (int i = dirtyL1.nextSetBit(0); i >= 0; i = dirtyL1.nextSetBit(i + 1)) {
                storage.write(e.clear().putLong(0, st.l1[i]), st.l1Offset + i * 8L);
            }
            dirtyL1.clear();
        }
    }

    void flush() throws IOException {
        if (st.refcounts != null) {
            claims.lock();
            try {
                writeBack();
                pendingDecrefs.addAll(st.refcounts.takeRetired());
                if (!pendingDecrefs.isEmpty()) {
                    claims.excludeInPlace();
                    try {
                        // the L2 updates that dropped these references reach stable media before the refcounts drop
                        st.syncMetadata();
                        while (!pendingDecrefs.isEmpty()) {
                            long c = pendingDecrefs.getLast();
                            long left = st.refcounts.decrement(c);
                            pendingDecrefs.removeLast();
                            if (left == 0) {
                                // nothing can reallocate the cluster before the allocation lock is released
                                storage.discard(c << clusterBits, clusterSize);
                                tables.cache().invalidate(c << clusterBits);
                            }
                        }
                    } finally {
                        claims.allowInPlace();
                    }
                }
                if (!st.refcountsStale()) {
                    st.refcounts.writeDirty();
                }
            } finally {
                claims.unlock();
            }
            storage.flush();
        }
    }

    void sync() throws IOException {
        if (st.refcounts != null) {
            storage.sync();
        }
    }

    /**
     * Sets the dirty bit (QEMU's qcow2_mark_dirty): written and synced before the first L2 update that may
     * reach the disk ahead of its refcounts. Under allocLock.
     */
    private void markDirty() throws IOException {
        Qcow2Header h = st.header;
        if (h.dirty()) {
            return;
        }
        long features = h.incompatibleFeatures() | Qcow2Header.INCOMPAT_DIRTY;
        long length = storage.size();
        Qcow2HeaderFields.writeIncompatible(storage, features);
        storage.flush();
        storage.sync();
        // only an image whose header says dirty may have stale refcounts
        st.header = h.withIncompatibleFeatures(features);
        // the sync covered the copied data and the file's growth too
        copiedSinceSync = false;
        syncedLength = length;
    }

    /**
     * Clears the dirty bit that {@link #markDirty} set (QEMU's qcow2_mark_clean): every cached table and
     * refcount is written and synced first, and the cleared bit is synced. Nothing changes when the image is not
     * dirty, or when writing fails (the image stays dirty: its next writable open rebuilds the refcounts).
     */
    void markClean() throws IOException {
        if (st.refcounts == null || !st.header.dirty() && !grownAhead) {
            return;
        }
        flush();
        claims.lock();
        try {
            claims.awaitQuiet();
            writeBack();
            st.refcounts.writeDirty();
            trimAhead();
            storage.flush();
            storage.sync();
            Qcow2Header h = st.header;
            if (h.dirty()) {
                long features = h.incompatibleFeatures() & ~Qcow2Header.INCOMPAT_DIRTY;
                Qcow2HeaderFields.writeIncompatible(storage, features);
                storage.flush();
                storage.sync();
                st.header = h.withIncompatibleFeatures(features);
            }
        } finally {
            claims.unlock();
        }
    }

    /**
     * Cuts what {@link #writeBack} grew the file by ahead and nothing uses, so that the file ends after its last
     * cluster in use, as QEMU's does (the refcounts in memory are exact).
     * Under allocLock.
     */
    void trimAhead() throws IOException {
        if (!grownAhead) {
            return;
        }
        long fileEnd = storage.size();
        long end = (st.refcounts.lastUsed(Qcow2Checks.divCeil(fileEnd, clusterSize)) + 1) * clusterSize;
        if (end < fileEnd) {
            storage.resize(end, Preallocation.OFF);
            syncedLength = Math.min(syncedLength, end);
        }
        grownAhead = false;
    }

    /**
     * {@inheritDoc} The persistent bitmaps marked in use while the image was written are stored (see
     * {@link Qcow2BitmapTracker}); then a writable image that lazy refcounts left dirty is marked clean (as
     * QEMU's qcow2_inactivate), unless writing fails: then the dirty bit stays for the next writable open to
     * repair.
     */
    void close() throws IOException {
        compressedReads.forget();
        storeBitmaps();
        markClean();
    }

    /** Stores the persistent bitmaps that changed (see {@link Qcow2BitmapStore}). */
    void storeBitmaps() throws IOException {
        if (st.tracker != null && st.tracker.changed()) {
            claims.lock();
            try {
                Qcow2BitmapStore.store(st.tracker, new BitmapHost());
            } finally {
                claims.unlock();
            }
        }
    }

    /** Host clusters for the bitmap tracker, under the allocation lock. */
    private final class BitmapHost implements Qcow2BitmapTracker.Host {
        @Override
        public long allocateCluster() throws IOException {
            long at = st.refcounts.allocate() << clusterBits;
            st.growFile(at + clusterSize);
            return at;
        }

        @Override
        public long allocateRun(int clusters) throws IOException {
            long at = st.refcounts.allocateRun(clusters) << clusterBits;
            st.growFile(at + (long) clusters * clusterSize);
            return at;
        }

        @Override
        public void commit() throws IOException {
            flush();
            st.syncAll();
        }

        @Override
        public void headerChanged(Qcow2Header header) {
            st.header = header;
        }

        @Override
        public void release(long hostOffset) throws IOException {
            if (st.refcounts.decrement(hostOffset >>> clusterBits) == 0) {
                tables.freeClusters(List.of(hostOffset >>> clusterBits));
            }
        }
    }
}
