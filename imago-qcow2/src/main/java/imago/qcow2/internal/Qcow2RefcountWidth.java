package imago.qcow2.internal;

import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.HashSet;
import java.util.Set;

/**
 * A new refcount width ({@code amend -o refcount_bits}): the refcounts of every cluster are read at the old width,
 * checked against the new one (a refcount the new width cannot hold refuses the change with QEMU's message, before
 * anything is written), and written into a new refcount table and blocks at the new width ({@link Qcow2Rebuild})
 * that keep off every cluster in use and the old refcount structures; once those are on stable media, one write
 * inside the first sector switches refcount_table_offset, refcount_table_clusters and refcount_order together. A
 * crash before it leaves the old structures valid; after it the old ones are simply unreferenced, refcount 0 in
 * the new table, so the image checks clean either way. Called with everything written back and no request in
 * flight.
 */
final class Qcow2RefcountWidth extends Qcow2Room {
    Qcow2RefcountWidth(Qcow2State st) {
        super(st);
    }

    /** @return the header as it is on the disk afterwards */
    Qcow2Header change(int newOrder) throws IOException {
        Qcow2Refcounts old = st.refcounts;
        long clusters = Qcow2Checks.divCeil(storage.size(), clusterSize);
        Set<Long> oldStructures = new HashSet<>();
        long tableAt = old.tableOffset() >>> clusterBits;
        for (long c = 0; c < Qcow2Checks.divCeil(old.tableBytes(), clusterSize); c++) {
            oldStructures.add(tableAt + c);
        }
        for (long b : old.blockOffsets()) {
            if (b != 0) {
                oldStructures.add(b >>> clusterBits);
            }
        }
        long max = newOrder == 6 ? -1L : (1L << (1 << newOrder)) - 1;
        Qcow2RefArray refs = new Qcow2RefArray(newOrder, (int) Math.max(clusters, 1));
        refs.ensure(clusters);
        for (long c = 0; c < clusters; c++) {
            long v = oldStructures.contains(c) ? 0 : old.get(c);
            if (v != 0 && max != -1 && Long.compareUnsigned(v, max) > 0) {
                throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 refcount width",
                        "Cannot decrease refcount entry width to " + (1 << newOrder) + " bits: Cluster at offset 0x"
                        + Long.toHexString(c << clusterBits) + " has a refcount of " + Long.toUnsignedString(v));
            }
            refs.set(c, v);
        }
        new Qcow2Rebuild(storage, clusterBits, newOrder, old.blockOffsets(), oldStructures, refs, (offset, tableClusters) -> {
            // bytes 48 to 99 in one write inside the first sector: the table and the width change together
            ByteBuffer fields = ByteBuffer.allocate(52);
            storage.read(fields, 48);
            fields.putLong(0, offset).putInt(8, tableClusters).putInt(48, newOrder);
            storage.write(fields.clear(), 48);
        }).run();
        ByteBuffer cluster0 = ByteBuffer.allocate(clusterSize);
        storage.read(cluster0, 0);
        return Qcow2Header.parse(cluster0.clear(), resource, storage.size());
    }
}
