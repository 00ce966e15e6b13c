package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COMPRESSED;
import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.L1E_RESERVED;
import static imago.qcow2.internal.Qcow2Entries.L2E_RESERVED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.LongStream;

/**
 * The references of snapshot operations ({@link Qcow2Snapshots}): the clusters each path from an L1 table reaches,
 * their refcounts checked and changed one L1 entry at a time (bounded memory), and the COPIED flags of the active
 * tables set where a refcount is 1 and cleared elsewhere. A refcount and the COPIED flag of the entry it counts
 * cannot change at once, so a crash in between can leak clusters or leave COPIED flags that disagree with
 * refcounts (qemu-img check -r all repairs both, as after a crash of QEMU), but never a reference without its
 * refcount nor a COPIED flag on a cluster a snapshot in the table shares.
 */
final class Qcow2SnapshotRefs extends Qcow2Room {
    private final Qcow2Tables tables;
    private final Qcow2Mapping mapping;

    Qcow2SnapshotRefs(Qcow2State st, Qcow2Tables tables, Qcow2Mapping mapping) {
        super(st);
        this.tables = tables;
        this.mapping = mapping;
    }

    /** {@code {a - b, b - a}} of two sorted multisets. */
    static long[][] difference(long[] a, long[] b) {
        LongStream.Builder onlyA = LongStream.builder();
        LongStream.Builder onlyB = LongStream.builder();
        int i = 0;
        int j = 0;
        while (i < a.length || j < b.length) {
            if (j == b.length || i < a.length && a[i] < b[j]) {
                onlyA.add(a[i++]);
            } else if (i == a.length || b[j] < a[i]) {
                onlyB.add(b[j++]);
            } else {
                i++;
                j++;
            }
        }
        return new long[][] {onlyA.build().toArray(), onlyB.build().toArray()};
    }

    static final long[] NONE = new long[0];

    /** The references of the path under one L1 entry, sorted, repeats kept. */
    @FunctionalInterface
    interface Refs {
        long[] of(int l1Index) throws IOException;
    }

    static boolean sameTable(long[] a, long[] b, int i) {
        long x = i < a.length ? a[i] & OFFSET_MASK : 0;
        long y = i < b.length ? b[i] & OFFSET_MASK : 0;
        return x == y;
    }

    /** Checks that {@code refs} of each of the first {@code count} L1 entries can change by {@code delta}. */
    void checkEach(int count, Refs refs, int delta) throws IOException {
        for (int i = 0; i < count; i++) {
            st.refcounts.checkAdjust(refs.of(i), delta);
        }
    }

    /**
     * Changes the refcounts of {@code refs} of each of the first {@code count} L1 entries by {@code delta}, one L1
     * entry at a time (bounded memory), and returns the clusters freed. {@link #checkEach} passed before, so only a
     * cluster counted under several entries (a compressed cluster spanning two L2 tables) can still overflow: an
     * increment then undoes what it did before failing.
     */
    List<Long> adjustEach(int count, Refs refs, int delta) throws IOException {
        List<Long> freed = new ArrayList<>();
        int i = 0;
        try {
            for (; i < count; i++) {
                freed.addAll(st.refcounts.adjust(refs.of(i), delta));
            }
        } catch (ImageLimitException e) {
            if (delta > 0) {
                for (int k = 0; k < i; k++) {
                    st.refcounts.adjust(refs.of(k), -delta);
                }
            }
            throw e;
        }
        return freed;
    }

    /**
     * The references the path under entry {@code i} of L1 table {@code table} holds: its L2 table and each host
     * cluster its entries reach (each cluster a compressed entry spans), sorted, repeats kept. The active table's L2
     * tables are read through the cache; a snapshot's directly, so that tables only it uses do not fill the cache.
     */
    long[] subtree(long[] table, int i, boolean active) throws IOException {
        if (i >= table.length) {
            return NONE;
        }
        long l1e = table[i];
        long l2 = l1e & OFFSET_MASK;
        if ((l1e & L1E_RESERVED) != 0 || (l2 & (clusterSize - 1)) != 0 || l2 + clusterSize > st.fileSize) {
            throw new CorruptImageException(resource, -1, "L1 entry " + i + " (0x" + Long.toHexString(l1e)
                    + ") is invalid");
        }
        if (l2 == 0) {
            return NONE;
        }
        long[] entries = active ? tables.table(l2) : tables.loadL2(l2);
        long[] out = new long[entries.length + 1];
        int n = 0;
        out[n++] = l2 >>> clusterBits;
        List<Long> compressed = new ArrayList<>();
        // with extended L2 entries every second word is a subcluster bitmap
        for (int j = 0; j < entries.length; j += extendedL2 ? 2 : 1) {
            long e = entries[j];
            if ((e & COMPRESSED) != 0) {
                Qcow2Entries.compressedClusters(e, clusterBits, compressed);
                continue;
            }
            long host = e & OFFSET_MASK;
            if ((e & L2E_RESERVED) != 0 || (host & (clusterSize - 1)) != 0 || host >= st.fileSize) {
                throw mapping.corruptL2(l2, extendedL2 ? j / 2 : j, e, "invalid entry");
            }
            if (host != 0) {
                out[n++] = host >>> clusterBits;
            }
        }
        if (!compressed.isEmpty()) {
            out = Arrays.copyOf(out, n + compressed.size());
            for (long c : compressed) {
                out[n++] = c;
            }
        }
        out = Arrays.copyOf(out, n);
        Arrays.sort(out);
        return out;
    }

    /** Clears the COPIED flags of the active L1 table and of the L2 tables it points at (all shared now). */
    void clearCopied() throws IOException {
        setCopied(cluster -> false);
    }

    /**
     * Sets the COPIED flag of each active L1 and L2 entry whose cluster has refcount 1 and clears it elsewhere
     * (qemu's qcow2_update_snapshot_refcount with addend 0).
     */
    void recomputeCopied() throws IOException {
        setCopied(cluster -> st.refcounts.get(cluster) == 1);
    }

    /** A test of a host cluster that may read refcounts. */
    @FunctionalInterface
    private interface ClusterTest {
        boolean test(long cluster) throws IOException;
    }

    /**
     * Sets the COPIED flag of each active L1 and L2 entry whose host cluster {@code owned} accepts and clears it
     * elsewhere (compressed and empty L2 entries have none); the changed L2 tables first, then the L1 table.
     */
    private void setCopied(ClusterTest owned) throws IOException {
        long[] cur = st.l1;
        long[] next = cur.clone();
        boolean changed = false;
        for (int i = 0; i < cur.length; i++) {
            long l2 = cur[i] & OFFSET_MASK;
            if (l2 == 0) {
                continue;
            }
            long[] t = tables.table(l2);
            boolean tableChanged = false;
            for (int j = 0; j < t.length; j += extendedL2 ? 2 : 1) {
                long e = t[j];
                long host = e & OFFSET_MASK;
                if ((e & COMPRESSED) != 0 || host == 0) {
                    continue;
                }
                long want = owned.test(host >>> clusterBits) ? e | COPIED : e & ~COPIED;
                if (want != e) {
                    t[j] = want;
                    tableChanged = true;
                }
            }
            if (tableChanged) {
                tables.writeTable(t, l2);
            }
            next[i] = owned.test(l2 >>> clusterBits) ? l2 | COPIED : l2;
            changed |= next[i] != cur[i];
        }
        if (changed) {
            tables.writeTable(next, st.l1Offset);
            st.l1 = next;
        }
    }
}
