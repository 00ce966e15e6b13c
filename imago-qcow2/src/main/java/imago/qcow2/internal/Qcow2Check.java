package imago.qcow2.internal;

import imago.api.CheckReport;
import imago.api.ImageException;
import imago.api.Repair;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code qemu-img check} for qcow2, following QEMU 7.2's qcow2-refcount.c: walks every table that
 * references clusters (header, active and snapshot L1/L2 tables, compressed ranges, snapshot table,
 * refcount table and blocks, bitmaps), counts in memory the references each host cluster should have,
 * and compares them with the refcounts on disk. Refcounts below the references are corruptions, above
 * are leaks; wrong COPIED flags and invalid entries are corruptions. With a {@link Repair} it fixes what
 * QEMU fixes, rebuilding the refcount structures ({@link Qcow2Rebuild}) when a referenced cluster has
 * refcount 0. The counting is {@link Qcow2CheckCounting}'s, the comparing and repairs {@link Qcow2CheckRepairs}'.
 *
 * <p>Everything is read from the storage, leniently: damage is counted, never thrown. Memory is one
 * refcount entry per host cluster of the file (plus one L1 table and one L2 table at a time), so it is
 * bounded by the file's size, not the virtual size; references past the end of the file are refused
 * before they could grow the array. Not thread-safe: the caller excludes every other request.
 *
 * <p>The snapshot table is read as QEMU's check reads it (qcow2_check_read_snapshot_table: too many entries, an
 * unaligned table or, without -r all, too much extra data in an entry fail the check; version 3 entries without a
 * disk size are incomplete); -r all writes a damaged table anew after the refcount repairs
 * ({@link Qcow2CheckRepairs}); entries past 65536 or ending past 64 MiB are dropped, as QEMU's repair does. A
 * writable open of a dirty image (lazy refcounts, not closed cleanly) runs this repair first ({@link Qcow2Opening}).
 */
final class Qcow2Check {
    /** QEMU refuses images whose file has more clusters than this (EFBIG). */
    private static final long MAX_CLUSTERS = Integer.MAX_VALUE;

    private final Storage storage;
    private final String resource;
    private final Qcow2CheckCounting counting;
    private final Qcow2CheckRepairs repairs;

    Qcow2Check(Storage storage) {
        this.storage = storage;
        this.resource = storage.name();
        this.counting = new Qcow2CheckCounting(storage);
        this.repairs = new Qcow2CheckRepairs(storage);
    }

    /**
     * Checks (and repairs) the image as {@code qemu-img check [-r]} does: after a repair that fixed
     * something, checks again and reports that check with the fixed counts.
     */
    CheckReport run(Repair repair) throws IOException {
        List<String> messages = new ArrayList<>();
        Qcow2CheckResult first = new Qcow2CheckResult(messages);
        try {
            checkOnce(first, repair);
        } catch (ImageException e) {
            // e.g. no room for rebuilt refcount structures: the check stops, as qemu-img's does
            first.message("ERROR " + e.detail());
            first.failure = e.detail();
        }
        Qcow2CheckResult shown = first;
        if (first.failure == null && (first.corruptionsFixed > 0 || first.leaksFixed > 0)) {
            Qcow2CheckResult again = new Qcow2CheckResult(messages);
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
    private Qcow2CheckState load(Qcow2CheckResult res, Repair repair) throws IOException {
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
        return new Qcow2CheckState(storage, header, fileSize, table);
    }

    /** One qcow2_check_refcounts with QEMU's bookkeeping; false if the check had to stop. */
    private boolean checkOnce(Qcow2CheckResult res, Repair repair) throws IOException {
        Qcow2CheckState st = load(res, repair);
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
        Qcow2RefArray refs = new Qcow2RefArray(st.order, (int) nbClusters);
        boolean[] rebuild = {false};
        counting.calculate(st, res, refs, fixErrors, rebuild);
        Qcow2CheckResult preCompare = res.copy();
        long highest = repairs.compare(st, res, refs, false, false, rebuild);
        if (rebuild[0] && fixErrors) {
            Qcow2CheckResult old = res.copy();
            res.message("Rebuilding refcount structure");
            new Qcow2Rebuild(storage, st, refs).run();
            // the snapshot table is read once per check, as QEMU's: its messages are not said again
            Qcow2CheckResult quiet = new Qcow2CheckResult(new ArrayList<>());
            st = load(quiet, repair);
            if (st == null) {
                res.checkErrors += quiet.checkErrors;
                res.failure = quiet.failure;
                return false;
            }
            res.corruptions = 0;
            res.leaks = 0;
            rebuild[0] = false;
            refs = new Qcow2RefArray(st.order, (int) Qcow2Checks.divCeil(st.fileSize, st.clusterSize));
            Qcow2CheckResult fresh = new Qcow2CheckResult(res.messages);
            counting.calculate(st, fresh, refs, false, rebuild);
            res.corruptions += fresh.corruptions;
            res.checkErrors += fresh.checkErrors;
            // the old refcount structures are leaked now: free them; leaks that remain are the rebuild's own
            Qcow2CheckResult leakRes = new Qcow2CheckResult(res.messages);
            highest = repairs.compare(st, leakRes, refs, true, false, rebuild);
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
                highest = repairs.compare(st, res, refs, true, fixErrors, rebuild);
            }
        }
        repairs.checkCopied(st, res, repair);
        if (res.failure != null) {
            return false;
        }
        // the snapshot table's own damage (QEMU adds its qcow2_check_read_snapshot_table result last); a repair
        // writes the table anew (qcow2_check_fix_snapshot_table)
        long tableDamage = st.table.corruptions();
        if (tableDamage > 0 && fixErrors) {
            String error = repairs.rewriteSnapshotTable(st, res);
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
            repairs.markCleanAndConsistent(st);
        }
        return true;
    }
}
