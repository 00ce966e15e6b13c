package imago.qed.internal;

import imago.api.CorruptImageException;
import imago.api.spi.TwoLevelTable;
import java.io.IOException;

/**
 * The cluster map of one open QED image: where a guest range lies, by the L1 and L2 tables (0: unallocated, falls to
 * the backing file; 1: a zero cluster; otherwise the data cluster's offset), and where new clusters go, the end of
 * the allocated clusters, as QEMU's {@code file_size}. Not thread-safe: the instance's lock guards every call.
 */
final class QedClusters {
    /** What the tables say about a run of clusters of one kind. */
    enum Kind { L1_UNALLOCATED, UNALLOCATED, ZERO, DATA }

    /**
     * A run from {@code offset} of {@code length} bytes in one L2 table's range, of one kind; {@code host} is the
     * data's offset for {@code DATA}.
     */
    record Run(Kind kind, long offset, long length, long host, int l1Index, TwoLevelTable.L2 table, int l2Index) {
        long end() {
            return offset + length;
        }
    }

    private final String name;
    /** The header's geometry (cluster and table size), which never changes while the image is open. */
    private final QedHeader geometry;
    private final TwoLevelTable tables;
    private final int clusterSize;
    private final int clusterShift;
    private final int l1Shift;
    private final int entryMask;
    /** Where the next cluster is allocated: the file's length rounded down to a cluster. */
    private long fileEnd;

    /**
     * Whether every cluster of a run must lie before {@link #fileEnd}; read-only, only the first must, as in QEMU,
     * and the rest of a file cut short reads as zeroes. Written, a run must not reach where new clusters go.
     */
    private final boolean wholeRuns;
    /** Whether {@link #fileEnd} was moved past what the tables name ({@link #skipMappedClusters}). */
    private boolean pastMapped;

    QedClusters(String name, QedHeader geometry, TwoLevelTable tables, long fileLength, boolean writable) {
        this.wholeRuns = writable;
        this.name = name;
        this.geometry = geometry;
        this.tables = tables;
        this.clusterSize = geometry.clusterSize();
        this.clusterShift = Integer.numberOfTrailingZeros(clusterSize);
        this.l1Shift = clusterShift + Integer.numberOfTrailingZeros(geometry.tableEntries());
        this.entryMask = geometry.tableEntries() - 1;
        this.fileEnd = fileLength & -(long) clusterSize;
    }

    TwoLevelTable tables() {
        return tables;
    }

    int clusterShift() {
        return clusterShift;
    }

    long clusterStart(long offset) {
        return offset & -(long) clusterSize;
    }

    /** The end of the allocated clusters. */
    long fileEnd() {
        return fileEnd;
    }

    /**
     * Moves the end of the allocated clusters past every table and cluster the tables name, once: in a file cut short
     * they may lie past its end, where QEMU would put new clusters over them.
     */
    void skipMappedClusters() throws IOException {
        if (pastMapped) {
            return;
        }
        long highest = tables.highestEnd(geometry.tableBytes(), fileEnd, e -> e == 1 ? 0 : e + clusterSize);
        fileEnd = Math.max(fileEnd, (highest + clusterSize - 1) & -(long) clusterSize);
        pastMapped = true;
    }

    /** Takes {@code bytes} (whole clusters) at the end of the allocated clusters; returns where they start. */
    long take(long bytes) {
        long host = fileEnd;
        fileEnd += bytes;
        return host;
    }

    /** Gives back clusters taken from {@code host} to {@code end} if nothing was taken after them; returns whether. */
    boolean giveBack(long host, long end) {
        if (fileEnd != end) {
            return false;
        }
        fileEnd = host;
        return true;
    }

    /** The run at {@code offset}, ending at most at {@code limit}. */
    Run lookup(long offset, long limit) throws IOException {
        int l1Index = (int) (offset >>> l1Shift);
        long end = Math.min(limit, (long) (l1Index + 1) << l1Shift);
        long l2Offset = tables.l1(l1Index);
        if (l2Offset == 0) {
            return new Run(Kind.L1_UNALLOCATED, offset, end - offset, -1, l1Index, null, -1);
        }
        TwoLevelTable.L2 table = tables.l2(l2Offset, l1Index, fileEnd);
        int index = (int) ((offset >>> clusterShift) & entryMask);
        int clusters = (int) ((end - 1 - clusterStart(offset) >>> clusterShift) + 1);
        long first = table.entry(index);
        Kind kind = first == 0 ? Kind.UNALLOCATED : first == 1 ? Kind.ZERO : Kind.DATA;
        int n = 1;
        for (; n < clusters; n++) {
            long e = table.entry(index + n);
            boolean same = switch (kind) {
                case UNALLOCATED -> e == 0;
                case ZERO -> e == 1;
                default -> e == first + (long) n * clusterSize;
            };
            if (!same) {
                break;
            }
        }
        if (kind == Kind.DATA) {
            for (int i = 0; i < (wholeRuns ? n : 1); i++) {
                long e = table.entry(index + i);
                if (!geometry.validClusterOffset(e, fileEnd)) {
                    throw CorruptImageException.invalidArgument(name, l2Offset + 8L * (index + i), "L2 entry names "
                            + "data cluster offset " + Long.toUnsignedString(e) + ", which is not a valid cluster offset (file of "
                            + fileEnd + " bytes)");
                }
            }
        }
        long runEnd = Math.min(end, clusterStart(offset) + ((long) n << clusterShift));
        long host = kind == Kind.DATA ? first + (offset & (clusterSize - 1)) : -1;
        return new Run(kind, offset, runEnd - offset, host, l1Index, table, index);
    }

    /** Where the unallocated L1 run {@code run} ends, taking in the empty L1 entries after it, up to {@code limit}. */
    long unallocatedL1End(Run run, long limit) {
        long end = run.end();
        while (end < limit && tables.l1((int) (end >>> l1Shift)) == 0) {
            end = Math.min(limit, end + (1L << l1Shift));
        }
        return end;
    }

    /**
     * Points the entries of {@code run}'s clusters at {@code clusters} clusters from {@code host} (1: zero clusters),
     * taking a new L2 table at the end of the allocated clusters if the L1 entry is empty.
     */
    void point(Run run, long host, int clusters) throws IOException {
        TwoLevelTable.L2 table = run.table();
        int index = (int) ((run.offset() >>> clusterShift) & entryMask);
        if (table == null) {
            long tableOffset = take(geometry.tableBytes());
            table = tables.fresh(tableOffset);
            tables.setL1(run.l1Index(), tableOffset);
        }
        for (int i = 0; i < clusters; i++) {
            tables.set(table, index + i, host == 1 ? 1 : host + ((long) i << clusterShift));
        }
        tables.writeBackIfFull();
    }
}
