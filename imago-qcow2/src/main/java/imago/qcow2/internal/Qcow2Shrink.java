package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;

import imago.api.Preallocation;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Shrinking, as QEMU's qcow2_co_truncate, qcow2_shrink_l1_table and qcow2_shrink_reftable do it. */
final class Qcow2Shrink extends Qcow2Room {
    private final Qcow2Tables tables;
    private final Qcow2Mapping mapping;
    private final Qcow2WriteBack writeBack;

    Qcow2Shrink(Qcow2State st, Qcow2Tables tables, Qcow2Mapping mapping, Qcow2WriteBack writeBack) {
        super(st);
        this.tables = tables;
        this.mapping = mapping;
        this.writeBack = writeBack;
    }

    /**
     * Shrinks as QEMU's qcow2_co_truncate does: the clusters past the new end are unmapped (their L2
     * entries cleared first, the refcounts dropped after a sync), L1 entries past the new end are cleared
     * and synced before their L2 tables are freed (the L1 table keeps its size, as in QEMU), the header gets
     * the new size, refcount blocks that count nothing but themselves leave the refcount table, and the file
     * is cut after the last cluster in use. Internal snapshots keep their clusters: L2 tables shared with
     * them are copied before entries change, and shared clusters only lose the active image's reference.
     */
    void shrink(long oldSize, long newSize) throws IOException {
        long from = Qcow2Checks.divCeil(newSize, clusterSize) * clusterSize;
        for (long pos = from; pos < oldSize; pos += clusterSize) {
            int l1Index = (int) (pos >>> (clusterBits + l2Bits));
            long l2Offset = st.l1[l1Index] & OFFSET_MASK;
            if (l2Offset == 0) {
                pos = ((long) (l1Index + 1) << (clusterBits + l2Bits)) - clusterSize;
                continue;
            }
            mapping.unit(pos); // validates the entry before it is dropped
            int index = (int) ((pos >>> clusterBits) & ((1L << l2Bits) - 1));
            // with extended L2 entries, entry i is table words 2i (entry) and 2i + 1 (subcluster bitmap)
            int word = extendedL2 ? 2 * index : index;
            long[] table = tables.table(l2Offset);
            long entry = table[word];
            boolean used = entry != 0 || extendedL2 && table[word + 1] != 0;
            if (used && (st.l1[l1Index] & COPIED) == 0) {
                // an L2 table shared with a snapshot is copied before it changes, as QEMU's discard does
                st.requireRoom(1);
                l2Offset = tables.copyL2(l1Index, l2Offset);
                table = tables.table(l2Offset);
            }
            if (used) {
                ByteBuffer e = ByteBuffer.allocate(extendedL2 ? 16 : 8).order(ByteOrder.BIG_ENDIAN);
                storage.write(e, l2Offset + word * 8L);
                table[word] = 0;
                if (extendedL2) {
                    table[word + 1] = 0;
                }
                if (st.header.hasDataFile()) {
                    // not refcounted: a raw data file is zeroed, otherwise the space is given back
                    if ((entry & OFFSET_MASK) != 0 || (entry & COPIED) != 0) {
                        st.clearDataFile(pos);
                    }
                } else {
                    tables.dropReference(entry);
                }
            }
        }
        long[] old = st.l1;
        int newL1Size = (int) Qcow2Header.l1EntriesFor(newSize, clusterBits, l2Bits);
        if (newL1Size < old.length) {
            storage.write(ByteBuffer.allocate((old.length - newL1Size) * 8), st.l1Offset + newL1Size * 8L);
            long[] shorter = old.clone();
            for (int i = newL1Size; i < old.length; i++) {
                long l2Offset = old[i] & OFFSET_MASK;
                if (l2Offset != 0) {
                    tables.decrefLater(l2Offset >>> clusterBits);
                    tables.cache().invalidate(l2Offset);
                    shorter[i] = 0;
                }
            }
            st.l1 = shorter;
        }
        // the cleared entries reach stable media (in flush, before the refcounts drop) before the header shrinks
        writeBack.flush();
        Qcow2HeaderFields.writeSize(storage, newSize);
        st.syncAll();
        st.size = newSize;
        if (st.header.hasDataFile()) {
            // as QEMU, the data file takes the new size exactly, after the header (nothing past it is referenced)
            Storage data = st.dataStorage();
            data.resize(newSize, Preallocation.OFF);
        }
        st.refcounts.dropUnusedBlocks();
        long fileEnd = storage.size();
        long last = st.refcounts.lastUsed(Qcow2Checks.divCeil(fileEnd, clusterSize));
        if ((last + 1) * clusterSize < fileEnd) {
            storage.resize((last + 1) * clusterSize, Preallocation.OFF);
        }
    }
}
