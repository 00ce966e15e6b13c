package imago.qcow2.internal;

import imago.api.CheckReport;
import imago.api.ImageException;
import imago.api.Preallocation;
import imago.api.Repair;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code qemu-img check} for qcow2, following QEMU 7.2's qcow2-refcount.c: walks every table that
 * references clusters (header, active and snapshot L1/L2 tables, compressed ranges, snapshot table,
 * refcount table and blocks, bitmaps), counts in memory the references each host cluster should have,
 * and compares them with the refcounts on disk. Refcounts below the references are corruptions, above
 * are leaks; wrong COPIED flags and invalid entries are corruptions. With a {@link Repair} it fixes what
 * QEMU fixes, rebuilding the refcount structures ({@link Qcow2Rebuild}) when a referenced cluster has
 * refcount 0.
 *
 * <p>Everything is read from the storage, leniently: damage is counted, never thrown. Memory is one
 * refcount entry per host cluster of the file (plus one L1 table and one L2 table at a time), so it is
 * bounded by the file's size, not the virtual size; references past the end of the file are refused
 * before they could grow the array. Not thread-safe: the caller excludes every other request.
 */
final class Qcow2Check {
    /** Refcount table entry: bits 0-8 are reserved. */
    static final long REFT_RESERVED = 0x1FFL;
    static final long REFT_OFFSET_MASK = ~0x1FFL;
    /** Bitmap table entry offset bits (9-55). */
    private static final long BME_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00L;
    private static final long BME_RESERVED = 0xFF00_0000_0000_01FEL;
    /** QEMU refuses images whose file has more clusters than this (EFBIG). */
    private static final long MAX_CLUSTERS = Integer.MAX_VALUE;

    private final Storage storage;
    private final String resource;
    /** Whether the once-only "Image is corrupt" message was given. */
    private boolean signaled;

    /** The counts of one pass, as QEMU's BdrvCheckResult. */
    static final class Result {
        long checkErrors;
        long corruptions;
        long leaks;
        long corruptionsFixed;
        long leaksFixed;
        long imageEndOffset;
        long totalClusters;
        long allocatedClusters;
        long fragmentedClusters;
        long compressedClusters;
        final List<String> messages;
        /** Why the check stopped (qemu's strerror text), or null. */
        String failure;
        private long dropped;

        Result(List<String> messages) {
            this.messages = messages;
        }

        void message(String m) {
            if (messages.size() < CheckReport.MAX_MESSAGES - 1) {
                messages.add(m);
            } else {
                dropped++;
            }
        }

        List<String> finishedMessages() {
            List<String> out = new ArrayList<>(messages);
            if (dropped > 0) {
                out.add("(" + dropped + " more messages left out)");
            }
            return out;
        }

        Result copy() {
            Result r = new Result(messages);
            r.copyFrom(this);
            return r;
        }

        void copyFrom(Result o) {
            checkErrors = o.checkErrors;
            corruptions = o.corruptions;
            leaks = o.leaks;
            corruptionsFixed = o.corruptionsFixed;
            leaksFixed = o.leaksFixed;
            imageEndOffset = o.imageEndOffset;
            totalClusters = o.totalClusters;
            allocatedClusters = o.allocatedClusters;
            fragmentedClusters = o.fragmentedClusters;
            compressedClusters = o.compressedClusters;
        }
    }

    /** The image as the check sees it: header and what it points at, read leniently. */
    final class State {
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
        private Qcow2Refcounts.Block block;

        State(Qcow2Header header, long fileSize, Qcow2Snapshot.CheckRead table) throws IOException {
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

        private Qcow2Refcounts.Block block(long off) throws IOException {
            if (off != blockOffset) {
                byte[] bytes = new byte[clusterSize];
                storage.read(ByteBuffer.wrap(bytes), off);
                block = new Qcow2Refcounts.Block(bytes, order);
                blockOffset = off;
            }
            return block;
        }

        /** Writes the refcount of {@code cluster} through (its block exists and is aligned). */
        void setRefcount(long cluster, long value) throws IOException {
            long off = reftable[(int) (cluster >>> blockBits)] & REFT_OFFSET_MASK;
            Qcow2Refcounts.Block b = block(off);
            int i = (int) (cluster & ((1L << blockBits) - 1));
            b.set(i, value);
            storage.write(ByteBuffer.wrap(b.bytes(), b.byteOffset(i), b.byteLength()), off + b.byteOffset(i));
        }

        void forgetBlocks() {
            blockOffset = -1;
            block = null;
        }
    }

    Qcow2Check(Storage storage) {
        this.storage = storage;
        this.resource = storage.name();
    }

    /**
     * Checks (and repairs) the image as {@code qemu-img check [-r]} does: after a repair that fixed
     * something, checks again and reports that check with the fixed counts.
     */
    CheckReport run(Repair repair) throws IOException {
        List<String> messages = new ArrayList<>();
        Result first = new Result(messages);
        try {
            checkOnce(first, repair);
        } catch (ImageException e) {
            // e.g. no room for rebuilt refcount structures: the check stops, as qemu-img's does
            first.message("ERROR " + e.detail());
            first.failure = e.detail();
        }
        Result shown = first;
        if (first.failure == null && (first.corruptionsFixed > 0 || first.leaksFixed > 0)) {
            Result again = new Result(messages);
            try {
                checkOnce(again, Repair.NONE);
            } catch (ImageException e) {
                again.failure = e.detail();
            }
            again.corruptionsFixed = first.corruptionsFixed;
            again.leaksFixed = first.leaksFixed;
            shown = again;
        }
        return new CheckReport(resource, "qcow2", shown.checkErrors, shown.corruptions, shown.leaks,
                shown.corruptionsFixed, shown.leaksFixed, shown.imageEndOffset, shown.totalClusters,
                shown.allocatedClusters, shown.fragmentedClusters, shown.compressedClusters,
                shown.finishedMessages(), Optional.ofNullable(shown.failure));
    }

    /** Loads the header and snapshot table; null (with a check error) if the header cannot be used. */
    private State load(Result res, Repair repair) throws IOException {
        long fileSize = storage.size();
        Qcow2Header header;
        try {
            ByteBuffer head = ByteBuffer.allocate(Qcow2Header.fixedLength());
            storage.read(head, 0);
            int cs = Qcow2Header.clusterSizeOf(head.flip(), resource);
            ByteBuffer cluster0 = ByteBuffer.allocate(cs);
            storage.read(cluster0, 0);
            // tables past the end of the file are counted as corruptions below, not refused
            header = Qcow2Header.parse(cluster0.flip(), resource, Long.MAX_VALUE, true);
        } catch (ImageException e) {
            res.message("ERROR cannot read the header: " + e.detail());
            res.checkErrors++;
            res.failure = e.detail();
            return null;
        }
        Qcow2Snapshot.CheckRead table = new Qcow2Snapshot.CheckRead(List.of(), 0, List.of(), 0, 0, null);
        if (header.nbSnapshots() != 0) {
            table = Qcow2Snapshot.readForCheck(storage, header, repair == Repair.ALL, res::message);
            if (table.failure() != null) {
                res.checkErrors++;
                res.failure = table.failure();
                return null;
            }
        }
        return new State(header, fileSize, table);
    }

    /** One qcow2_check_refcounts with QEMU's bookkeeping; false if the check had to stop. */
    private boolean checkOnce(Result res, Repair repair) throws IOException {
        State st = load(res, repair);
        if (st == null) {
            return false;
        }
        long nbClusters = Qcow2Checks.divCeil(st.fileSize, st.clusterSize);
        if (nbClusters > MAX_CLUSTERS) {
            res.message("ERROR the file has too many clusters to check (" + nbClusters + ")");
            res.checkErrors++;
            res.failure = "File too large";
            return false;
        }
        res.totalClusters = Qcow2Checks.divCeil(st.header.guestSize(), st.clusterSize);
        boolean fixErrors = repair == Repair.ALL;
        boolean fixLeaks = repair != Repair.NONE;
        RefArray refs = new RefArray(st.order, (int) nbClusters);
        boolean[] rebuild = {false};
        calculate(st, res, refs, fixErrors, rebuild);
        Result preCompare = res.copy();
        long highest = compare(st, res, refs, false, false, rebuild);
        if (rebuild[0] && fixErrors) {
            Result old = res.copy();
            res.message("Rebuilding refcount structure");
            new Qcow2Rebuild(storage, st, refs).run();
            // the snapshot table is read once per check, as QEMU's: its messages are not said again
            Result quiet = new Result(new ArrayList<>());
            st = load(quiet, repair);
            if (st == null) {
                res.checkErrors += quiet.checkErrors;
                res.failure = quiet.failure;
                return false;
            }
            res.corruptions = 0;
            res.leaks = 0;
            rebuild[0] = false;
            refs = new RefArray(st.order, (int) Qcow2Checks.divCeil(st.fileSize, st.clusterSize));
            Result fresh = new Result(res.messages);
            calculate(st, fresh, refs, false, rebuild);
            res.corruptions += fresh.corruptions;
            res.checkErrors += fresh.checkErrors;
            // the old refcount structures are leaked now: free them; leaks that remain are the rebuild's own
            Result leakRes = new Result(res.messages);
            highest = compare(st, leakRes, refs, true, false, rebuild);
            if (rebuild[0]) {
                res.message("ERROR rebuilt refcount structure is still broken");
            }
            if (res.corruptions < old.corruptions) {
                res.corruptionsFixed += old.corruptions - res.corruptions;
            }
            if (res.leaks < old.leaks) {
                res.leaksFixed += old.leaks - res.leaks;
            }
            res.leaks += leakRes.leaks;
        } else if (fixLeaks) {
            if (rebuild[0]) {
                res.message("ERROR need to rebuild refcount structures");
                res.checkErrors++;
                res.failure = "Input/output error";
                return false;
            }
            if (res.leaks > 0 || res.corruptions > 0) {
                res.copyFrom(preCompare);
                highest = compare(st, res, refs, true, fixErrors, rebuild);
            }
        }
        checkCopied(st, res, repair);
        if (res.failure != null) {
            return false;
        }
        // the snapshot table's own damage (QEMU adds its qcow2_check_read_snapshot_table result last); a repair
        // writes the table anew (qcow2_check_fix_snapshot_table)
        long tableDamage = st.table.corruptions();
        if (tableDamage > 0 && fixErrors) {
            String error = rewriteSnapshotTable(st, res);
            if (error != null) {
                res.message("ERROR failed to update snapshot table: " + error);
                res.checkErrors++;
                res.corruptions += tableDamage;
                res.failure = error;
                return false;
            }
            res.corruptionsFixed += tableDamage;
        } else {
            res.corruptions += tableDamage;
        }
        res.imageEndOffset = (highest + 1) * st.clusterSize;
        if (fixLeaks && res.checkErrors == 0 && res.corruptions == 0) {
            markCleanAndConsistent(st);
        }
        return true;
    }

    // ------------------------------------------------------------------ counting (calculate_refcounts)

    private void calculate(State st, Result res, RefArray refs, boolean fixErrors, boolean[] rebuild)
            throws IOException {
        inc(st, res, refs, 0, st.clusterSize);
        checkL1(st, res, refs, st.header.l1TableOffset(), st.header.l1Size(), true);
        if (st.hasDataFile() && st.header.nbSnapshots() > 0) {
            res.message("ERROR " + st.header.nbSnapshots() + " snapshots in image with data file");
            res.corruptions++;
        }
        for (Qcow2Snapshot sn : st.snapshots) {
            if ((sn.l1TableOffset() & (st.clusterSize - 1)) != 0) {
                res.message("ERROR snapshot " + sn.id() + " (" + sn.name() + ") l1_offset=0x"
                        + Long.toHexString(sn.l1TableOffset()) + ": L1 table is not cluster aligned; snapshot table "
                        + "entry corrupted");
                res.corruptions++;
                continue;
            }
            if (Integer.toUnsignedLong(sn.l1Size()) > Qcow2Header.MAX_L1_BYTES / 8) {
                res.message("ERROR snapshot " + sn.id() + " (" + sn.name() + ") l1_size=0x"
                        + Integer.toHexString(sn.l1Size()) + ": L1 table is too large; snapshot table entry corrupted");
                res.corruptions++;
                continue;
            }
            checkL1(st, res, refs, sn.l1TableOffset(), sn.l1Size(), false);
        }
        inc(st, res, refs, st.header.snapshotsOffset(), st.snapshotsSize);
        inc(st, res, refs, st.header.refcountTableOffset(), (long) st.reftable.length * 8);
        checkBitmaps(st, res, refs);
        checkRefblocks(st, res, refs, fixErrors, rebuild);
    }

    /** qcow2_inc_refcounts_imrt: one more reference to every cluster of {@code [offset, offset + size)}. */
    private void inc(State st, Result res, RefArray refs, long offset, long size) {
        inc(st, res, refs, offset, size, 1);
    }

    /**
     * {@code times} more references to every cluster of {@code [offset, offset + size)}: the same counts as
     * {@code times} calls of {@link #inc(State, Result, RefArray, long, long)} (messages said once).
     */
    private void inc(State st, Result res, RefArray refs, long offset, long size, long times) {
        if (size <= 0) {
            return;
        }
        // the last cluster may be partly past the end of the file, never a whole cluster more
        if (offset < 0 || offset + size < 0 || offset + size - st.fileSize >= st.clusterSize) {
            res.message("ERROR: counting reference for region exceeding the end of the file by one cluster or "
                    + "more: offset 0x" + Long.toHexString(offset) + " size 0x" + Long.toHexString(size));
            res.corruptions += times;
            return;
        }
        long start = offset >>> st.clusterBits;
        long last = (offset + size - 1) >>> st.clusterBits;
        for (long k = start; k <= last; k++) {
            refs.ensure(k + 1);
            long r = refs.get(k);
            long room = st.refcountMax - r; // unsigned: the references that still fit
            if (Long.compareUnsigned(times, room) <= 0) {
                refs.set(k, r + times);
                continue;
            }
            refs.set(k, st.refcountMax);
            res.message("ERROR: overflow cluster offset=0x" + Long.toHexString(k << st.clusterBits));
            res.message("Use qemu-img amend to increase the refcount entry width or qemu-img convert to "
                    + "create a clean copy if the image cannot be opened for writing");
            res.corruptions += times - room;
        }
    }

    private void checkL1(State st, Result res, RefArray refs, long l1Offset, int l1Size, boolean active)
            throws IOException {
        long bytes = Integer.toUnsignedLong(l1Size) * 8;
        if (bytes == 0) {
            return;
        }
        inc(st, res, refs, l1Offset, bytes);
        // entries past the end of the file read as zero and reference nothing: do not even read them, so that
        // tables a damaged header or snapshot table puts far past the end cost nothing
        long inFile = l1Offset < 0 || l1Offset >= st.fileSize ? 0 : (Math.min(bytes, st.fileSize - l1Offset) + 7) / 8;
        long[] l1 = readLongs(l1Offset, (int) inFile);
        // each distinct L2 table is walked once, with the number of entries naming it: a damaged L1 table whose
        // entries all name one table costs one walk, not one per entry (the counts are the same)
        Map<Long, Long> tables = new LinkedHashMap<>();
        for (int i = 0; i < l1.length; i++) {
            long e = l1[i];
            if (e == 0) {
                continue;
            }
            if ((e & Qcow2Instance.L1E_RESERVED) != 0) {
                res.message("ERROR found L1 entry with reserved bits set: " + Long.toHexString(e));
                res.corruptions++;
            }
            long l2Offset = e & Qcow2Instance.OFFSET_MASK;
            inc(st, res, refs, l2Offset, st.clusterSize);
            if ((l2Offset & (st.clusterSize - 1)) != 0) {
                res.message("ERROR l2_offset=" + Long.toHexString(l2Offset) + ": Table is not cluster aligned; L1 "
                        + "entry corrupted");
                res.corruptions++;
            }
            if (l2Offset < st.fileSize) { // past the end it reads as zeroes: nothing allocated, nothing to count
                tables.merge(l2Offset, 1L, Long::sum);
            }
        }
        for (Map.Entry<Long, Long> t : tables.entrySet()) {
            checkL2(st, res, refs, readLongs(t.getKey(), st.clusterSize / 8), active, t.getValue());
        }
    }

    /** check_refcounts_l2 for one table that {@code times} L1 entries name. */
    private void checkL2(State st, Result res, RefArray refs, long[] l2, boolean active, long times) {
        long nextContiguous = 0;
        long allocated = 0;
        long fragmented = 0;
        long compressedCount = 0;
        int step = st.extendedL2 ? 2 : 1;
        int csizeShift = 62 - (st.clusterBits - 8);
        long offsetMask = (1L << csizeShift) - 1;
        long csizeMask = (1L << (st.clusterBits - 8)) - 1;
        for (int i = 0; i < st.l2Entries; i++) {
            long entry = l2[i * step];
            long bitmap = st.extendedL2 ? l2[i * step + 1] : 0;
            boolean compressed = (entry & Qcow2Instance.COMPRESSED) != 0;
            if (!compressed && (entry & Qcow2Instance.L2E_RESERVED) != 0) {
                res.message("ERROR found l2 entry with reserved bits set: " + Long.toHexString(entry));
                res.corruptions += times;
            }
            long offset = entry & Qcow2Instance.OFFSET_MASK;
            if (compressed) {
                if ((entry & Qcow2Instance.COPIED) != 0) {
                    res.message("ERROR: coffset=0x" + Long.toHexString(entry & offsetMask) + ": copied flag must "
                            + "never be set for compressed clusters");
                    res.corruptions += times;
                }
                if (st.hasDataFile()) {
                    res.message("ERROR compressed cluster " + i + " with data file, entry=0x" + Long.toHexString(entry));
                    res.corruptions += times;
                    continue;
                }
                if (bitmap != 0) {
                    res.message("ERROR compressed cluster " + i + " with non-zero subcluster allocation bitmap, "
                            + "entry=0x" + Long.toHexString(entry));
                    res.corruptions += times;
                    continue;
                }
                long coffset = entry & offsetMask;
                long nbSectors = ((entry >>> csizeShift) & csizeMask) + 1;
                inc(st, res, refs, coffset, nbSectors * 512 - (coffset & 511), times);
                allocated++;
                compressedCount++;
                fragmented++;
                continue;
            }
            boolean zeroFlag = !st.extendedL2 && (entry & Qcow2Instance.ZERO_FLAG) != 0;
            boolean normal = offset != 0 || (!zeroFlag && st.hasDataFile() && (entry & Qcow2Instance.COPIED) != 0);
            if (!normal) {
                if (!zeroFlag && (bitmap & 0xFFFF_FFFFL) != 0) {
                    res.message("ERROR: Unallocated cluster has non-zero subcluster allocation map");
                    res.corruptions += times;
                }
                continue;
            }
            if (((bitmap >>> 32) & bitmap) != 0) {
                res.message("ERROR offset=" + Long.toHexString(offset) + ": Allocated cluster has corrupted "
                        + "subcluster allocation bitmap");
                res.corruptions += times;
            }
            if ((offset & (st.clusterSize - 1)) != 0) {
                res.corruptions += times;
                boolean containsData = st.extendedL2 ? (bitmap & 0xFFFF_FFFFL) != 0 : !zeroFlag;
                res.message(containsData
                        ? "ERROR offset=" + Long.toHexString(offset) + ": Data cluster is not properly aligned; L2 "
                                + "entry corrupted."
                        : "ERROR offset=" + Long.toHexString(offset) + ": Preallocated cluster is not properly "
                                + "aligned; L2 entry corrupted.");
            }
            allocated++;
            if (nextContiguous != 0 && offset != nextContiguous) {
                fragmented++;
            }
            nextContiguous = offset + st.clusterSize;
            if (!st.hasDataFile()) {
                inc(st, res, refs, offset, st.clusterSize, times);
            }
        }
        if (active) {
            res.allocatedClusters += allocated * times;
            res.compressedClusters += compressedCount * times;
            res.fragmentedClusters += fragmented * times;
        }
    }

    /** qcow2_check_bitmaps_refcounts: the bitmap directory, tables and data clusters. */
    private void checkBitmaps(State st, Result res, RefArray refs) throws IOException {
        if ((st.header.autoclearFeatures() & 1) == 0) {
            return;
        }
        Qcow2Extension ext = st.header.extensions().stream().filter(e -> e.type() == Qcow2Header.EXT_BITMAPS)
                .findFirst().orElse(null);
        if (ext == null || ext.data().length < 24) {
            return;
        }
        ByteBuffer b = ByteBuffer.wrap(ext.data()).order(ByteOrder.BIG_ENDIAN);
        long nb = Integer.toUnsignedLong(b.getInt(0));
        long dirSize = b.getLong(8);
        long dirOffset = b.getLong(16);
        if (nb == 0 || dirSize <= 0 || dirSize > (64L << 20) || dirOffset < 0 || dirOffset + dirSize > st.fileSize) {
            return;
        }
        inc(st, res, refs, dirOffset, dirSize);
        ByteBuffer dir = ByteBuffer.allocate((int) dirSize).order(ByteOrder.BIG_ENDIAN);
        storage.read(dir, dirOffset);
        int p = 0;
        for (long n = 0; n < nb && p + 24 <= dirSize; n++) {
            long tableOffset = dir.getLong(p);
            long tableSize = Integer.toUnsignedLong(dir.getInt(p + 8));
            int nameSize = Short.toUnsignedInt(dir.getShort(p + 18));
            long extra = Integer.toUnsignedLong(dir.getInt(p + 20));
            long entryLen = (24 + extra + nameSize + 7) & ~7L;
            p += (int) Math.min(entryLen, Integer.MAX_VALUE - p);
            if (tableSize > (1L << 22)) {
                continue;
            }
            inc(st, res, refs, tableOffset, tableSize * 8);
            long[] table = readLongs(tableOffset, (int) tableSize);
            for (long e : table) {
                if ((e & BME_RESERVED) != 0 || ((e & BME_OFFSET_MASK) & (st.clusterSize - 1)) != 0) {
                    res.message("ERROR bitmap table entry 0x" + Long.toHexString(e) + " is corrupted");
                    res.corruptions++;
                    continue;
                }
                long off = e & BME_OFFSET_MASK;
                if (off != 0) {
                    inc(st, res, refs, off, st.clusterSize);
                }
            }
        }
    }

    private void checkRefblocks(State st, Result res, RefArray refs, boolean fixErrors, boolean[] rebuild)
            throws IOException {
        for (int i = 0; i < st.reftable.length; i++) {
            long e = st.reftable[i];
            long offset = e & REFT_OFFSET_MASK;
            long cluster = offset >>> st.clusterBits;
            if ((e & REFT_RESERVED) != 0) {
                res.message("ERROR refcount table entry " + i + " has reserved bits set");
                res.corruptions++;
                rebuild[0] = true;
                continue;
            }
            if ((offset & (st.clusterSize - 1)) != 0) {
                res.message("ERROR refcount block " + i + " is not cluster aligned; refcount table entry corrupted");
                res.corruptions++;
                rebuild[0] = true;
                continue;
            }
            if (Long.compareUnsigned(cluster, refs.size()) >= 0) {
                res.corruptions++;
                res.message((fixErrors ? "Repairing" : "ERROR") + " refcount block " + i + " is outside image");
                if (fixErrors) {
                    // QEMU grows the file to reach the block; only where that keeps the check's memory bounded by
                    // the file it was given (a block far past the end is rebuilt instead)
                    if (offset < 0 || offset > Qcow2Checks.MAX_HOST_OFFSET
                            || (offset >>> st.clusterBits) > 4 * refs.size() + 1024) {
                        rebuild[0] = true;
                        res.message("ERROR could not resize image: File too large");
                        continue;
                    }
                    storage.resize(offset + st.clusterSize, Preallocation.OFF);
                    st.fileSize = storage.size();
                    refs.ensure(Qcow2Checks.divCeil(st.fileSize, st.clusterSize));
                    res.corruptions--;
                    res.corruptionsFixed++;
                    inc(st, res, refs, offset, st.clusterSize);
                }
                continue;
            }
            if (offset != 0) {
                inc(st, res, refs, offset, st.clusterSize);
                long r = refs.get(cluster);
                if (r != 1) {
                    res.message("ERROR refcount block " + i + " refcount=" + Long.toUnsignedString(r));
                    res.corruptions++;
                    rebuild[0] = true;
                }
            }
        }
    }

    // ------------------------------------------------------------------ comparing (compare_refcounts)

    /** Compares on-disk refcounts with the counted references; returns the highest cluster in use. */
    private long compare(State st, Result res, RefArray refs, boolean fixLeaks, boolean fixErrors,
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
                            + hex(st.reftable[(int) index] & REFT_OFFSET_MASK) + " unaligned (reftable index: "
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

    // ------------------------------------------------------------------ COPIED flags (check_oflag_copied)

    private void checkCopied(State st, Result res, Repair repair) throws IOException {
        boolean fix = repair == Repair.ALL
                || (repair == Repair.LEAKS && res.checkErrors == 0 && res.corruptions == 0 && res.leaks == 0);
        st.forgetBlocks();
        long l1Offset = st.header.l1TableOffset();
        long[] l1 = readLongs(l1Offset, st.header.l1Size());
        int step = st.extendedL2 ? 2 : 1;
        Map<Long, Long> copiedErrors = new HashMap<>();
        for (int i = 0; i < l1.length; i++) {
            long l1e = l1[i];
            long l2Offset = l1e & Qcow2Instance.OFFSET_MASK;
            if (l2Offset == 0) {
                continue;
            }
            if (st.readable(l2Offset >>> st.clusterBits)) {
                long r = st.refcount(l2Offset >>> st.clusterBits);
                if ((r == 1) != ((l1e & Qcow2Instance.COPIED) != 0)) {
                    res.corruptions++;
                    res.message((fix ? "Repairing" : "ERROR") + " OFLAG_COPIED L2 cluster: l1_index=" + i
                            + " l1_entry=" + Long.toHexString(l1e) + " refcount=" + Long.toUnsignedString(r));
                    if (fix) {
                        long fixed = r == 1 ? l1e | Qcow2Instance.COPIED : l1e & ~Qcow2Instance.COPIED;
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
            long[] l2 = readLongs(l2Offset, st.clusterSize / 8);
            int dirty = 0;
            long before = res.corruptions;
            for (int j = 0; j < st.l2Entries; j++) {
                long e = l2[j * step];
                if ((e & Qcow2Instance.COMPRESSED) != 0) {
                    continue;
                }
                boolean zeroFlag = !st.extendedL2 && (e & Qcow2Instance.ZERO_FLAG) != 0;
                long data = e & Qcow2Instance.OFFSET_MASK;
                boolean normalOrZeroAlloc = data != 0
                        || (!zeroFlag && st.hasDataFile() && (e & Qcow2Instance.COPIED) != 0);
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
                if ((rc == 1) != ((e & Qcow2Instance.COPIED) != 0)) {
                    res.corruptions++;
                    res.message((fix ? "Repairing" : "ERROR") + " OFLAG_COPIED data cluster: l2_entry="
                            + Long.toHexString(e) + " refcount=" + Long.toUnsignedString(rc));
                    if (fix) {
                        l2[j * step] = rc == 1 ? e | Qcow2Instance.COPIED : e & ~Qcow2Instance.COPIED;
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

    // ------------------------------------------------------------------ snapshot table (qcow2_write_snapshots)

    /**
     * Writes the snapshot table anew as QEMU's qcow2_write_snapshots after a check: every entry with 24 bytes
     * of known extra data (the disk size of an incomplete entry is the virtual size) plus the unknown extra data
     * it had, unless that was too large. Ordering: the new clusters' refcounts, then the table, then (synced)
     * the header points at it; only then does the old table lose its references. Returns null, or why it
     * failed (qemu-img's strerror text).
     */
    private String rewriteSnapshotTable(State st, Result res) throws IOException {
        List<byte[]> entries = new ArrayList<>(st.snapshots.size());
        java.util.Set<Integer> incomplete = new java.util.HashSet<>(st.table.incomplete());
        ByteBuffer fixed = ByteBuffer.allocate(Qcow2Snapshot.FIXED).order(ByteOrder.BIG_ENDIAN);
        long size = 0;
        for (int i = 0; i < st.snapshots.size(); i++) {
            Qcow2Snapshot sn = st.snapshots.get(i);
            storage.read(fixed.clear(), sn.entryOffset());
            long oldExtra = Integer.toUnsignedLong(fixed.getInt(36));
            int unknown = oldExtra > Qcow2Snapshot.MAX_EXTRA || oldExtra <= 24 ? 0 : (int) oldExtra - 24;
            byte[] id = sn.id().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            byte[] name = sn.name().getBytes(java.nio.charset.StandardCharsets.UTF_8);
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
                    storage.write(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, features), 72);
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
        storage.write(ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN).putInt(0, entries.size()).putLong(4, offset),
                60);
        storage.flush();
        storage.sync();
        freeOldTable(st, res, refcounts);
        return null;
    }

    /** qcow2_free_clusters of the old snapshot table: nothing is freed if one of its clusters cannot be. */
    private void freeOldTable(State st, Result res, Qcow2Refcounts refcounts) throws IOException {
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
    private static boolean overlapsMetadata(State st, long offset) {
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
            long block = e & REFT_OFFSET_MASK;
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
    private void markCleanAndConsistent(State st) throws IOException {
        long bits = Qcow2Header.INCOMPAT_DIRTY | Qcow2Header.INCOMPAT_CORRUPT;
        if (st.header.version() < 3 || (st.header.incompatibleFeatures() & bits) == 0) {
            return;
        }
        // everything the repair wrote reaches stable media before the header says the image is clean
        storage.flush();
        storage.sync();
        long features = st.header.incompatibleFeatures() & ~bits;
        storage.write(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, features), 72);
        storage.flush();
        storage.sync();
    }

    // ------------------------------------------------------------------ helpers

    /** C's {@code %#" PRIx64}: {@code 0x}-prefixed hex, but plain {@code 0} for zero. */
    private static String hex(long v) {
        return v == 0 ? "0" : "0x" + Long.toHexString(v);
    }

    /** Reads {@code n} big-endian longs from {@code offset}; bytes past the end of the file read as zero. */
    long[] readLongs(long offset, int n) throws IOException {
        long[] out = new long[n];
        if (offset < 0 || offset > Long.MAX_VALUE - n * 8L) {
            return out;
        }
        int chunk = 1 << 16;
        ByteBuffer buf = ByteBuffer.allocate(Math.min(n, chunk) * 8).order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < n; i += chunk) {
            int k = Math.min(chunk, n - i);
            buf.clear().limit(k * 8);
            storage.read(buf, offset + i * 8L);
            buf.flip().asLongBuffer().get(out, i, k);
        }
        return out;
    }

    /**
     * The counted references, one entry per host cluster in the image's refcount width (QEMU's in-memory
     * refcount table): bytes for widths up to 8 bits, then 16, 32 and 64-bit entries.
     */
    static final class RefArray {
        private final int order;
        private long size;
        private byte[] b;
        private char[] c;
        private int[] i32;
        private long[] l;

        RefArray(int order, int size) {
            this.order = order;
            this.size = size;
            allocate(size);
        }

        private void allocate(int capacity) {
            switch (order) {
                case 0, 1, 2, 3 -> b = b == null ? new byte[capacity] : Arrays.copyOf(b, capacity);
                case 4 -> c = c == null ? new char[capacity] : Arrays.copyOf(c, capacity);
                case 5 -> i32 = i32 == null ? new int[capacity] : Arrays.copyOf(i32, capacity);
                default -> l = l == null ? new long[capacity] : Arrays.copyOf(l, capacity);
            }
        }

        private int capacity() {
            return switch (order) {
                case 0, 1, 2, 3 -> b.length;
                case 4 -> c.length;
                case 5 -> i32.length;
                default -> l.length;
            };
        }

        long size() {
            return size;
        }

        /** Grows to at least {@code n} entries (new ones 0). */
        void ensure(long n) {
            if (n <= size) {
                return;
            }
            if (n > capacity()) {
                allocate((int) Math.min(Integer.MAX_VALUE - 8, Math.max(n, capacity() + (capacity() >> 1) + 16)));
            }
            size = n;
        }

        long get(long k) {
            int x = (int) k;
            return switch (order) {
                case 0, 1, 2, 3 -> b[x] & 0xFF;
                case 4 -> c[x];
                case 5 -> Integer.toUnsignedLong(i32[x]);
                default -> l[x];
            };
        }

        void set(long k, long v) {
            int x = (int) k;
            switch (order) {
                case 0, 1, 2, 3 -> b[x] = (byte) v;
                case 4 -> c[x] = (char) v;
                case 5 -> i32[x] = (int) v;
                default -> l[x] = v;
            }
        }
    }
}
