package imago.qed.internal;

import imago.api.spi.Storage;
import imago.api.spi.TwoLevelTable;
import java.io.IOException;
import java.util.BitSet;

/**
 * {@code qemu-img check} for QED, as QEMU 7.2's qed-check.c counts: every L2 table and data cluster the tables name
 * must be a valid offset (cluster-aligned, past the header, inside the file) and named once; clusters past the header
 * that nothing names are leaks. A repairing check clears invalid entries (L1 and L2 tables written whole); leaks are
 * counted, never freed, and a cluster named twice stays a corruption, as in QEMU.
 */
final class QedCheck {
    /** One pass's counts, with qemu-img check's names. */
    record Result(long checkErrors, long corruptions, long corruptionsFixed, long leaks, long totalClusters,
            long allocatedClusters, long fragmentedClusters) {
    }

    private final QedHeader header;
    private final TwoLevelTable tables;
    private final long fileEnd;
    private final boolean fix;
    private final BitSet used;
    private long checkErrors;
    private long corruptions;
    private long corruptionsFixed;
    private long allocated;
    private long fragmented;

    private QedCheck(QedHeader header, TwoLevelTable tables, long fileEnd, boolean fix) {
        this.header = header;
        this.tables = tables;
        this.fileEnd = fileEnd;
        this.fix = fix;
        this.used = new BitSet((int) Math.min(Integer.MAX_VALUE, clusters(fileEnd)));
    }

    /** Checks (and with {@code fix}, repairs) the image whose allocated clusters end at {@code fileEnd}. */
    static Result run(Storage storage, QedHeader header, TwoLevelTable tables, long fileEnd, boolean fix)
            throws IOException {
        QedCheck c = new QedCheck(header, tables, fileEnd, fix);
        boolean complete = c.l1Table();
        long leaks = 0;
        if (complete) {
            for (long i = header.headerSize() & 0xFFFF_FFFFL; i < c.clusters(fileEnd); i++) {
                if (!c.used.get((int) i)) {
                    leaks++;
                }
            }
        }
        long total = (header.imageSize() + header.clusterSize() - 1) / header.clusterSize();
        return new Result(c.checkErrors, c.corruptions, c.corruptionsFixed, leaks, total, c.allocated, c.fragmented);
    }

    private long clusters(long bytes) {
        return (bytes + header.clusterSize() - 1) / header.clusterSize();
    }

    /** Marks {@code n} clusters from {@code offset} used; false (and corruptions counted) if one was already. */
    private boolean use(long offset, int n) {
        long cluster = offset / header.clusterSize();
        int twice = 0;
        for (int i = 0; i < n; i++, cluster++) {
            if (cluster < Integer.MAX_VALUE) {
                if (used.get((int) cluster)) {
                    twice++;
                }
                used.set((int) cluster);
            }
        }
        corruptions += twice;
        return twice == 0;
    }

    /** The L1 table and every L2 table it names; false if an I/O error cut the scan short. */
    private boolean l1Table() throws IOException {
        use(header.l1TableOffset(), header.tableSize());
        boolean l1Invalid = false;
        boolean complete = true;
        for (int i = 0; i < tables.entries(); i++) {
            long offset = tables.l1(i);
            if (offset == 0) {
                continue;
            }
            if (!header.validTableOffset(offset, fileEnd)) {
                if (fix) {
                    tables.setL1(i, 0);
                    corruptionsFixed++;
                } else {
                    corruptions++;
                }
                l1Invalid = true;
                continue;
            }
            if (!use(offset, header.tableSize())) {
                continue;
            }
            TwoLevelTable.L2 table;
            try {
                table = tables.l2(offset, i, fileEnd);
            } catch (IOException e) {
                checkErrors++;
                complete = false;
                continue;
            }
            if (l2Table(table) > 0 && fix) {
                tables.writeNow(table);
            }
        }
        if (l1Invalid && fix) {
            tables.writeL1Now();
        }
        return complete;
    }

    /** One L2 table's entries; returns how many were invalid. */
    private int l2Table(TwoLevelTable.L2 table) {
        int invalid = 0;
        long last = 0;
        for (int i = 0; i < table.length(); i++) {
            long offset = table.entry(i);
            if (offset == 0 || offset == 1) {
                continue;
            }
            allocated++;
            if (last != 0 && last + header.clusterSize() != offset) {
                fragmented++;
            }
            last = offset;
            if (!header.validClusterOffset(offset, fileEnd)) {
                if (fix) {
                    tables.set(table, i, 0);
                    corruptionsFixed++;
                } else {
                    corruptions++;
                }
                invalid++;
                continue;
            }
            use(offset, 1);
        }
        return invalid;
    }
}
