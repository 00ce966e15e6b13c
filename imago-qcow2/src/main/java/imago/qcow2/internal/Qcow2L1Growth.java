package imago.qcow2.internal;

import imago.api.ImageLimitException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Growing the active L1 table, as QEMU 7.2's qcow2_grow_l1_table grows it for a resize and for a write past the
 * table (the VM state area, {@link Qcow2VmState}): a new, larger table in new clusters (the entries copied, the
 * rest zero, exactly its entries written), synced with the refcounts before the header points at it (synced); then
 * the old table's clusters are freed at once, so that the next clusters go there, as QEMU's go. A resize asks for
 * an exact number of entries; a write for half again as many as the table had, until it has the one the write
 * needs (QEMU's growth that spares the next write a new table), refused past QEMU's 32 MiB table.
 *
 * <p>Under the allocation lock with no allocating write in flight. A new L1 entry still waiting to be written
 * ({@link Qcow2Tables#dirtyL1()}) is copied into the new table, whose sync makes it durable with the L2 table it
 * points at (written before it), and the next write-back writes it again at its place in the new table. Lock-free
 * readers see the old array or the longer copy, which hold the same entries.
 */
final class Qcow2L1Growth extends Qcow2Room {

    Qcow2L1Growth(Qcow2State st) {
        super(st);
    }

    /**
     * Grows the table to exactly {@code entries} entries (a resize); nothing when it has as many.
     *
     * @throws ImageLimitException if the table would pass QEMU's limit (nothing changed)
     */
    void growTo(long entries) throws IOException {
        if (entries > st.l1.length) {
            grow(checked(entries));
        }
    }

    /**
     * Grows the table so that it has entry {@code index}, to half again as many entries as it has, as often as
     * that takes (QEMU's growth for a write past the table); nothing when it has the entry.
     *
     * @throws ImageLimitException if the table would pass QEMU's limit, which can happen although the entry itself
     *         lies within it, as in QEMU (nothing changed)
     */
    void growToReach(long index) throws IOException {
        long[] old = st.l1;
        if (index < old.length) {
            return;
        }
        if (index + 1 > Integer.MAX_VALUE / 8) {
            throw tooLarge(index + 1);
        }
        long entries = Math.max(1, old.length);
        while (entries < index + 1) {
            entries = (entries * 3 + 1) / 2;
        }
        grow(checked(entries));
    }

    private long checked(long entries) throws ImageLimitException {
        if (entries * 8 > Qcow2Header.MAX_L1_BYTES) {
            throw tooLarge(entries);
        }
        return entries;
    }

    private ImageLimitException tooLarge(long entries) {
        // qemu-io says "File too large" (EFBIG) for it
        return new ImageLimitException(resource, 36, "an L1 table of " + entries + " entries is past QEMU's "
                + (Qcow2Header.MAX_L1_BYTES >> 20) + " MiB: Active L1 table too large");
    }

    private void grow(long entries) throws IOException {
        st.requireRoom((int) Qcow2Checks.divCeil(entries * 8, clusterSize));
        long[] old = st.l1;
        int bytes = (int) (entries * 8);
        int clusters = (int) Qcow2Checks.divCeil(bytes, clusterSize);
        long first = st.refcounts.allocateRun(clusters);
        long offset = first << clusterBits;
        try {
            ByteBuffer table = ByteBuffer.allocate(bytes).order(ByteOrder.BIG_ENDIAN);
            table.asLongBuffer().put(old);
            storage.write(table, offset);
            st.growFile(offset + bytes);
            // the new table and its refcounts are on stable media before the header points at it
            st.syncAll();
        } catch (IOException | RuntimeException e) {
            for (int k = 0; k < clusters; k++) {
                st.refcounts.free(first + k);
            }
            throw e;
        }
        Qcow2HeaderFields.writeL1(storage, (int) entries, offset);
        st.syncAll();
        long oldFirst = st.l1Offset >>> clusterBits;
        int oldClusters = (int) Qcow2Checks.divCeil(old.length * 8L, clusterSize);
        st.l1Offset = offset;
        st.l1 = Arrays.copyOf(old, (int) entries);
        // nothing points at the old table any more: its clusters are free for the next allocations, as in QEMU
        for (int k = 0; k < oldClusters; k++) {
            st.refcounts.decrement(oldFirst + k);
        }
    }
}
