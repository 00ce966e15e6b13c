package imago.qcow2.internal;

import imago.api.ImageLimitException;
import imago.api.Preallocation;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * Rebuilds the refcount table and blocks from scratch out of the references {@link Qcow2Check}
 * counted, as QEMU's rebuild_refcount_structure: new refcount blocks for every range with a cluster in
 * use and a new refcount table are placed first-fit in clusters that nothing references (counting
 * themselves), written and synced; then the header is switched to the new table and synced. Nothing
 * new lands on the old table or on any cluster an old table entry names (valid or not), so a crash
 * before the switch leaves the old structures as they were; after the switch they are leaks, which the
 * check that follows frees.
 */
final class Qcow2Rebuild {
    /** Points the header at the new refcount table, once it is on stable media. */
    interface Switch {
        void to(long tableOffset, int tableClusters) throws IOException;
    }

    private final Storage storage;
    private final Qcow2RefArray refs;
    private final int clusterBits;
    private final int clusterSize;
    private final int order;
    private final int blockBits;
    private final Switch headerSwitch;
    private long firstFree;
    /** Clusters the old refcount table points at, whether or not they count as in use: never overwritten. */
    private final Set<Long> oldBlocks = new HashSet<>();

    Qcow2Rebuild(Storage storage, Qcow2CheckState st, Qcow2RefArray refs) {
        this(storage, st.clusterBits, st.order, st.reftable, Set.of(), refs,
                (offset, clusters) -> Qcow2HeaderFields.writeRefcountTable(storage, offset, clusters));
    }

    /**
     * A rebuild at refcount width {@code 2^order} bits that also keeps off the clusters of {@code avoid} and switches
     * the header with {@code headerSwitch}.
     */
    Qcow2Rebuild(Storage storage, int clusterBits, int order, long[] oldReftable, Set<Long> avoid,
            Qcow2RefArray refs, Switch headerSwitch) {
        this.storage = storage;
        this.refs = refs;
        this.clusterBits = clusterBits;
        this.clusterSize = 1 << clusterBits;
        this.order = order;
        this.blockBits = clusterBits + 3 - order;
        this.headerSwitch = headerSwitch;
        for (long e : oldReftable) {
            long off = e & Qcow2CheckState.REFT_OFFSET_MASK;
            if (off != 0) {
                oldBlocks.add(off >>> clusterBits);
            }
        }
        oldBlocks.addAll(avoid);
    }

    void run() throws IOException {
        long[] blocks = new long[0];
        long tableOffset = -1;
        long tableClusters = 0;
        while (true) {
            // a refblock for every range in use; allocating one may put a cluster in a new range
            boolean changed = true;
            while (changed) {
                changed = false;
                long nBlocks = Qcow2Checks.divCeil(refs.size(), 1L << blockBits);
                if (nBlocks > blocks.length) {
                    blocks = Arrays.copyOf(blocks, (int) nBlocks);
                }
                for (int b = 0; b < nBlocks; b++) {
                    if (blocks[b] == 0 && inUse(b)) {
                        blocks[b] = allocate(1) << clusterBits;
                        changed = true;
                    }
                }
            }
            int entries = 0;
            for (int b = blocks.length - 1; b >= 0; b--) {
                if (blocks[b] != 0) {
                    entries = b + 1;
                    break;
                }
            }
            long needed = Math.max(1, Qcow2Checks.divCeil(entries * 8L, clusterSize));
            if (needed * clusterSize > Qcow2Header.MAX_REFTABLE_BYTES) {
                throw new ImageLimitException(storage.name(), 48, "the rebuilt refcount table would be larger than "
                        + Qcow2Header.MAX_REFTABLE_BYTES + " bytes");
            }
            if (tableOffset >= 0 && needed <= tableClusters) {
                break;
            }
            if (tableOffset >= 0) {
                for (long c = 0; c < tableClusters; c++) {
                    refs.set((tableOffset >>> clusterBits) + c, 0);
                }
                firstFree = Math.min(firstFree, tableOffset >>> clusterBits);
            }
            tableClusters = needed;
            tableOffset = allocate(needed) << clusterBits;
        }

        long end = refs.size() << clusterBits;
        if (end > storage.size()) {
            storage.resize(end, Preallocation.OFF);
        }
        int perBlock = 1 << blockBits;
        for (int b = 0; b < blocks.length; b++) {
            if (blocks[b] == 0) {
                continue;
            }
            Qcow2RefBlock block = new Qcow2RefBlock(new byte[clusterSize], order);
            long base = (long) b << blockBits;
            for (int k = 0; k < perBlock && base + k < refs.size(); k++) {
                long v = refs.get(base + k);
                if (v != 0) {
                    block.set(k, v);
                }
            }
            storage.write(ByteBuffer.wrap(block.bytes()), blocks[b]);
        }
        ByteBuffer table = ByteBuffer.allocate((int) (tableClusters * clusterSize)).order(ByteOrder.BIG_ENDIAN);
        for (int b = 0; b < blocks.length; b++) {
            table.putLong(b * 8, blocks[b]);
        }
        storage.write(table, tableOffset);
        // the new structures are on stable media before the header points at them
        storage.flush();
        storage.sync();
        headerSwitch.to(tableOffset, (int) tableClusters);
        storage.flush();
        storage.sync();
    }

    private boolean inUse(int block) {
        long base = (long) block << blockBits;
        long end = Math.min(refs.size(), base + (1L << blockBits));
        for (long k = base; k < end; k++) {
            if (refs.get(k) != 0) {
                return true;
            }
        }
        return false;
    }

    /** First fit: {@code n} contiguous clusters nothing references, given refcount 1; returns the first. */
    private long allocate(long n) throws IOException {
        long start = firstFree;
        long run = 0;
        for (long c = firstFree; ; c++) {
            if (c >= Qcow2Checks.MAX_HOST_OFFSET >>> clusterBits) {
                throw new ImageLimitException(storage.name(), -1, "no room for the rebuilt refcount structures");
            }
            if ((c < refs.size() && refs.get(c) != 0) || oldBlocks.contains(c)) {
                run = 0;
                start = c + 1;
                continue;
            }
            run++;
            if (run == n) {
                break;
            }
        }
        refs.ensure(start + n);
        for (long c = start; c < start + n; c++) {
            refs.set(c, 1);
        }
        if (start == firstFree) {
            firstFree = start + n;
        }
        return start;
    }
}
