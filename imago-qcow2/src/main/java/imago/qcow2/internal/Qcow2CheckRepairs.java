package imago.qcow2.internal;

import imago.api.ImageException;
import imago.api.Repair;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The comparing and repairing of {@link Qcow2Check} (QEMU's compare_refcounts, check_oflag_copied,
 * qcow2_check_fix_snapshot_table): refcounts below the references are corruptions, above are leaks; repairs only
 * raise refcounts that are too low and lower those that are too high (freed clusters are discarded), then fix COPIED
 * flags. With -r all a damaged snapshot table is written anew after the refcount repairs: the new clusters'
 * refcounts (synced), then the table (synced), then nb_snapshots and snapshots_offset in one header write (synced),
 * and only then does the old table lose its references (nothing of it is freed if one of its refcounts is already
 * 0, or if the check did not count it: a table at cluster 0 or running a cluster or more past the end of the file).
 * The dirty and corrupt bits are cleared last, after a sync, and only if the image is clean.
 */
final class Qcow2CheckRepairs {
    private final Storage storage;
    /** Whether the once-only "Image is corrupt" message was given. */
    private boolean signaled;

    Qcow2CheckRepairs(Storage storage) {
        this.storage = storage;
    }

    /** Compares on-disk refcounts with the counted references; returns the highest cluster in use. */
    long compare(Qcow2CheckState st, Qcow2CheckResult res, Qcow2RefArray refs, boolean fixLeaks, boolean fixErrors,
            boolean[] rebuild) throws IOException {
        long highest = 0;
        st.forgetBlocks();
        for (long i = 0; i < refs.size(); i++) {
            if (!st.readable(i)) {
                long index = i >>> st.blockBits;
                if (!signaled) {
                    // QEMU's qcow2_signal_corruption: said once per open image
                    signaled = true;
                    res.message("qcow2: Image is corrupt: Refblock offset "
                            + hex(st.reftable[(int) index] & Qcow2CheckState.REFT_OFFSET_MASK) + " unaligned (reftable index: "
                            + hex(index) + "); further non-fatal corruption events will be suppressed");
                }
                res.message("Can't get refcount for cluster " + i + ": Input/output error");
                res.checkErrors++;
                continue;
            }
            long r1 = st.refcount(i);
            long r2 = refs.get(i);
            if (r1 != 0 || r2 != 0) {
                highest = i;
            }
            if (r1 != r2) {
                boolean lower = Long.compareUnsigned(r1, r2) < 0;
                boolean fixable = r1 != 0 && (lower ? fixErrors : fixLeaks);
                if (r1 == 0) {
                    rebuild[0] = true;
                }
                res.message((fixable ? "Repairing" : lower ? "ERROR" : "Leaked") + " cluster " + i + " refcount="
                        + Long.toUnsignedString(r1) + " reference=" + Long.toUnsignedString(r2));
                if (fixable) {
                    st.setRefcount(i, r2);
                    if (r2 == 0) {
                        storage.discard(i << st.clusterBits, st.clusterSize);
                    }
                    if (lower) {
                        res.corruptionsFixed++;
                    } else {
                        res.leaksFixed++;
                    }
                    continue;
                }
                if (lower) {
                    res.corruptions++;
                } else {
                    res.leaks++;
                }
            }
        }
        return highest;
    }

    void checkCopied(Qcow2CheckState st, Qcow2CheckResult res, Repair repair) throws IOException {
        boolean fix = repair == Repair.ALL
                || (repair == Repair.LEAKS && res.checkErrors == 0 && res.corruptions == 0 && res.leaks == 0);
        st.forgetBlocks();
        long l1Offset = st.header.l1TableOffset();
        long[] l1 = st.readLongs(l1Offset, st.header.l1Size());
        int step = st.extendedL2 ? 2 : 1;
        Map<Long, Long> copiedErrors = new HashMap<>();
        for (int i = 0; i < l1.length; i++) {
            long l1e = l1[i];
            long l2Offset = l1e & Qcow2Entries.OFFSET_MASK;
            if (l2Offset == 0) {
                continue;
            }
            if (st.readable(l2Offset >>> st.clusterBits)) {
                long r = st.refcount(l2Offset >>> st.clusterBits);
                if ((r == 1) != ((l1e & Qcow2Entries.COPIED) != 0)) {
                    res.corruptions++;
                    res.message((fix ? "Repairing" : "ERROR") + " OFLAG_COPIED L2 cluster: l1_index=" + i
                            + " l1_entry=" + Long.toHexString(l1e) + " refcount=" + Long.toUnsignedString(r));
                    if (fix) {
                        long fixed = r == 1 ? l1e | Qcow2Entries.COPIED : l1e & ~Qcow2Entries.COPIED;
                        storage.write(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, fixed),
                                l1Offset + i * 8L);
                        res.corruptions--;
                        res.corruptionsFixed++;
                    }
                }
            }
            if (l2Offset >= st.fileSize) {
                continue; // reads as zeroes: no data cluster to look at
            }
            Long seen = copiedErrors.get(l2Offset);
            if (seen != null) {
                // a table several entries name: it found the same again, or nothing once repaired
                if (!fix) {
                    res.corruptions += seen;
                }
                continue;
            }
            long[] l2 = st.readLongs(l2Offset, st.clusterSize / 8);
            int dirty = 0;
            long before = res.corruptions;
            for (int j = 0; j < st.l2Entries; j++) {
                long e = l2[j * step];
                if ((e & Qcow2Entries.COMPRESSED) != 0) {
                    continue;
                }
                boolean zeroFlag = !st.extendedL2 && (e & Qcow2Entries.ZERO_FLAG) != 0;
                long data = e & Qcow2Entries.OFFSET_MASK;
                boolean normalOrZeroAlloc = data != 0
                        || (!zeroFlag && st.hasDataFile() && (e & Qcow2Entries.COPIED) != 0);
                if (!normalOrZeroAlloc) {
                    continue;
                }
                long rc;
                if (st.hasDataFile()) {
                    rc = 1;
                } else {
                    if (!st.readable(data >>> st.clusterBits)) {
                        continue;
                    }
                    rc = st.refcount(data >>> st.clusterBits);
                }
                if ((rc == 1) != ((e & Qcow2Entries.COPIED) != 0)) {
                    res.corruptions++;
                    res.message((fix ? "Repairing" : "ERROR") + " OFLAG_COPIED data cluster: l2_entry="
                            + Long.toHexString(e) + " refcount=" + Long.toUnsignedString(rc));
                    if (fix) {
                        l2[j * step] = rc == 1 ? e | Qcow2Entries.COPIED : e & ~Qcow2Entries.COPIED;
                        dirty++;
                    }
                }
            }
            if (dirty > 0) {
                if (overlapsMetadata(st, l2Offset)) {
                    res.message("ERROR: Could not write L2 table; metadata overlap check failed: Input/output error");
                    res.checkErrors++;
                    res.failure = "Input/output error";
                    return;
                }
                ByteBuffer buf = ByteBuffer.allocate(st.clusterSize).order(ByteOrder.BIG_ENDIAN);
                buf.asLongBuffer().put(l2);
                storage.write(buf, l2Offset);
                res.corruptions -= dirty;
                res.corruptionsFixed += dirty;
            }
            copiedErrors.put(l2Offset, res.corruptions - before);
        }
    }

    /**
     * Writes the snapshot table anew as QEMU's qcow2_write_snapshots after a check: every entry with 24 bytes
     * of known extra data (the disk size of an incomplete entry is the virtual size) plus the unknown extra data
     * it had, unless that was too large. Ordering: the new clusters' refcounts, then the table, then (synced)
     * the header points at it; only then does the old table lose its references. Returns null, or why it
     * failed (qemu-img's strerror text).
     */
    String rewriteSnapshotTable(Qcow2CheckState st, Qcow2CheckResult res) throws IOException {
        List<byte[]> entries = new ArrayList<>(st.snapshots.size());
        Set<Integer> incomplete = new HashSet<>(st.table.incomplete());
        ByteBuffer fixed = ByteBuffer.allocate(Qcow2Snapshot.FIXED).order(ByteOrder.BIG_ENDIAN);
        long size = 0;
        for (int i = 0; i < st.snapshots.size(); i++) {
            Qcow2Snapshot sn = st.snapshots.get(i);
            storage.read(fixed.clear(), sn.entryOffset());
            long oldExtra = Integer.toUnsignedLong(fixed.getInt(36));
            int unknown = oldExtra > Qcow2Snapshot.MAX_EXTRA || oldExtra <= 24 ? 0 : (int) oldExtra - 24;
            byte[] id = sn.id().getBytes(StandardCharsets.UTF_8);
            byte[] name = sn.name().getBytes(StandardCharsets.UTF_8);
            ByteBuffer e = ByteBuffer.allocate(Qcow2Snapshot.FIXED + 24 + unknown + id.length + name.length)
                    .order(ByteOrder.BIG_ENDIAN);
            long vmState = sn.vmStateSize();
            e.putLong(sn.l1TableOffset()).putInt(sn.l1Size()).putShort((short) id.length)
                    .putShort((short) name.length).putInt((int) sn.dateSec()).putInt((int) sn.dateNsec())
                    .putLong(sn.vmClockNsec()).putInt(Long.compareUnsigned(vmState, 0xFFFF_FFFFL) <= 0 ? (int) vmState : 0)
                    .putInt(24 + unknown);
            e.putLong(vmState).putLong(incomplete.contains(i) ? st.header.guestSize() : sn.diskSize()).putLong(sn.icount());
            if (unknown > 0) {
                storage.read(e.slice(e.position(), unknown), sn.entryOffset() + Qcow2Snapshot.FIXED + 24);
                e.position(e.position() + unknown);
            }
            e.put(id).put(name);
            size = ((size + 7) & ~7L) + e.capacity();
            entries.add(e.array());
        }
        long clusters = Math.max(1, Qcow2Checks.divCeil(size, st.clusterSize));
        if (clusters > Integer.MAX_VALUE) {
            return "File too large";
        }
        Qcow2Refcounts refcounts;
        long start;
        try {
            // first fit from the start, as qcow2_alloc_clusters after the check's repairs (refcount blocks and a
            // larger refcount table are made as needed); nothing is written before the overlap check passed
            refcounts = Qcow2Refcounts.open(storage, st.header, storage.size());
            start = refcounts.allocateExistingRun((int) clusters);
            // a new refcount block describes itself in the first cluster it covers: safe only when every reference
            // has its refcount (then nothing a missing block would count is in use), and a run of a whole block's
            // clusters or more never fits where blocks are missing
            if (start < 0 && res.corruptions == 0 && res.checkErrors == 0 && clusters < (1L << st.blockBits)) {
                start = refcounts.allocateRun((int) clusters);
            }
            if (start < 0) {
                res.message("ERROR no room for a snapshot table of " + size + " bytes where refcount blocks exist");
                return "No space left on device";
            }
        } catch (ImageException e) {
            res.message("ERROR " + e.detail());
            return "Input/output error";
        }
        long offset = start << st.clusterBits;
        for (long c = start; c < start + clusters; c++) {
            if (overlapsMetadata(st, c << st.clusterBits)) {
                res.message("qcow2: Marking image as corrupt: Preventing invalid write on metadata (overlaps with "
                        + "snapshot table); further corruption events will be suppressed");
                if (st.header.version() >= 3) {
                    long features = st.header.incompatibleFeatures() | Qcow2Header.INCOMPAT_CORRUPT;
                    Qcow2HeaderFields.writeIncompatible(storage, features);
                    storage.flush();
                    storage.sync();
                }
                return "Input/output error";
            }
        }
        refcounts.writeDirty();
        storage.flush();
        storage.sync();
        long at = offset;
        for (byte[] e : entries) {
            at = (at + 7) & ~7L;
            storage.write(ByteBuffer.wrap(e), at);
            at += e.length;
        }
        storage.flush();
        storage.sync();
        Qcow2HeaderFields.writeSnapshotTable(storage, entries.size(), offset);
        storage.flush();
        storage.sync();
        freeOldTable(st, res, refcounts);
        return null;
    }

    /** qcow2_free_clusters of the old snapshot table: nothing is freed if one of its clusters cannot be. */
    private void freeOldTable(Qcow2CheckState st, Qcow2CheckResult res, Qcow2Refcounts refcounts) throws IOException {
        long oldOffset = st.header.snapshotsOffset();
        if (st.snapshotsSize <= 0) {
            return;
        }
        long first = oldOffset >>> st.clusterBits;
        long last = (oldOffset + st.snapshotsSize - 1) >>> st.clusterBits;
        // a table the check did not count (a cluster or more past the end of the file) holds no reference of its
        // own: dropping one would take another user's (the header's, when the table starts at 0)
        if (first == 0 || oldOffset + st.snapshotsSize - st.fileSize >= st.clusterSize) {
            res.message("qcow2_free_clusters failed: Invalid argument");
            return;
        }
        for (long c = first; c <= last; c++) {
            if (refcounts.get(c) == 0) {
                res.message("qcow2_free_clusters failed: Invalid argument");
                return;
            }
        }
        for (long c = first; c <= last; c++) {
            if (refcounts.decrement(c) == 0) {
                refcounts.writeDirty();
                storage.discard(c << st.clusterBits, st.clusterSize);
            }
        }
        refcounts.writeDirty();
        storage.flush();
    }

    /**
     * QEMU's metadata overlap check before an L2 table is rewritten (the default "cached" checks, active L2
     * tables ignored): whether {@code [offset, offset + cluster)} overlaps the header cluster, the active L1
     * table, the refcount table or a refcount block, the snapshot table, or a snapshot's L1 table.
     */
    private static boolean overlapsMetadata(Qcow2CheckState st, long offset) {
        long size = st.clusterSize;
        if (offset < st.clusterSize) {
            return true;
        }
        Qcow2Header h = st.header;
        if (overlaps(offset, size, h.l1TableOffset(), h.l1Size() * 8L)
                || overlaps(offset, size, h.refcountTableOffset(), st.reftable.length * 8L)
                || overlaps(offset, size, h.snapshotsOffset(), st.snapshotsSize)) {
            return true;
        }
        for (long e : st.reftable) {
            long block = e & Qcow2CheckState.REFT_OFFSET_MASK;
            if (block != 0 && overlaps(offset, size, block, st.clusterSize)) {
                return true;
            }
        }
        for (Qcow2Snapshot sn : st.snapshots) {
            if (overlaps(offset, size, sn.l1TableOffset(), Integer.toUnsignedLong(sn.l1Size()) * 8)) {
                return true;
            }
        }
        return false;
    }

    private static boolean overlaps(long a, long aSize, long b, long bSize) {
        return aSize > 0 && bSize > 0 && Long.compareUnsigned(a, b + bSize) < 0 && Long.compareUnsigned(b, a + aSize) < 0;
    }

    /** Clears the dirty and corrupt bits (qcow2_mark_clean, qcow2_mark_consistent) after a clean repair. */
    void markCleanAndConsistent(Qcow2CheckState st) throws IOException {
        long bits = Qcow2Header.INCOMPAT_DIRTY | Qcow2Header.INCOMPAT_CORRUPT;
        if (st.header.version() < 3 || (st.header.incompatibleFeatures() & bits) == 0) {
            return;
        }
        // everything the repair wrote reaches stable media before the header says the image is clean
        storage.flush();
        storage.sync();
        long features = st.header.incompatibleFeatures() & ~bits;
        Qcow2HeaderFields.writeIncompatible(storage, features);
        storage.flush();
        storage.sync();
    }

    /** C's {@code %#" PRIx64}: {@code 0x}-prefixed hex, but plain {@code 0} for zero. */
    private static String hex(long v) {
        return v == 0 ? "0" : "0x" + Long.toHexString(v);
    }
}
