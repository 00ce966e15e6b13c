package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COMPRESSED;
import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;
import static imago.qcow2.internal.Qcow2Entries.ZERO_FLAG;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.function.DoubleConsumer;

/**
 * Turns the zero clusters of a standard-L2 image into what qcow2 v2 can say, as QEMU's qcow2_expand_zero_clusters:
 * a zero cluster with a host cluster gets that cluster filled with zeroes and becomes a data cluster; one without
 * becomes unallocated when there is no backing file (it reads as zero all the same), else a new cluster of zeroes;
 * one whose host cluster a snapshot also uses as data gets a new cluster of zeroes (QEMU's overwrites the snapshot).
 * The entries change in the L2 cache, so the write-back order holds: the new clusters' refcounts and the zeroes
 * reach stable media before the L2 tables that point at them. Called with the allocation lock held and no request
 * in flight.
 */
final class Qcow2ZeroExpansion extends Qcow2Room {
    private final Qcow2Tables tables;

    Qcow2ZeroExpansion(Qcow2State st, Qcow2Tables tables) {
        super(st);
        this.tables = tables;
    }

    /** Expands the zero clusters of the active L1 table and of every snapshot's. */
    void expand(DoubleConsumer progress) throws IOException {
        Set<Long> l2Tables = new LinkedHashSet<>();
        for (long e : st.l1) {
            if ((e & OFFSET_MASK) != 0) {
                l2Tables.add(e & OFFSET_MASK);
            }
        }
        for (Qcow2Snapshot sn : st.snapshots) {
            for (long e : Qcow2Tables.readTable(storage, sn.l1TableOffset(), sn.l1Size())) {
                if ((e & OFFSET_MASK) != 0) {
                    l2Tables.add(e & OFFSET_MASK);
                }
            }
        }
        boolean backing = st.header.backingFile().isPresent();
        ByteBuffer zeroes = ByteBuffer.allocate(clusterSize);
        for (long l2 : l2Tables) {
            long[] table = tables.table(l2);
            long l2Refcount = st.refcounts.get(l2 >>> clusterBits);
            for (int i = 0; i < table.length; i++) {
                long entry = table[i];
                if ((entry & COMPRESSED) != 0 || (entry & ZERO_FLAG) == 0) {
                    continue;
                }
                long host = entry & OFFSET_MASK;
                if (host == 0 && !backing) {
                    tables.setL2Entry(l2, i, 0);
                    continue;
                }
                if (host != 0 && st.refcounts.get(host >>> clusterBits) > l2Refcount) {
                    // the cluster holds a snapshot's data (QEMU 7.2 fills it with zeroes all the same, which
                    // destroys the snapshot): these entries get a cluster of their own, and let go of the shared one
                    // once the new entries are on stable media
                    for (long k = 0; k < l2Refcount; k++) {
                        tables.decrefLater(host >>> clusterBits);
                    }
                    host = 0;
                }
                if (host == 0) {
                    host = st.refcounts.allocate() << clusterBits;
                    st.growFile(host + clusterSize);
                    if (l2Refcount > 1) {
                        // a table shared with snapshots: each of them references the new cluster too
                        st.refcounts.adjust(new long[] {host >>> clusterBits}, (int) l2Refcount - 1);
                    }
                }
                storage.write(zeroes.clear(), host);
                tables.setL2Entry(l2, i, l2Refcount == 1 ? host | COPIED : host);
            }
        }
        progress.accept(1.0);
    }
}
