package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COMPRESSED;
import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;
import static imago.qcow2.internal.Qcow2Entries.SUB_ALLOC_ALL;
import static imago.qcow2.internal.Qcow2Entries.ZERO_FLAG;

import imago.api.Preallocation;
import imago.api.spi.BackingReader;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Preallocation, at creation and when growing: runs of clusters allocated, the file's space reserved or zeroed
 * first, and synced with their refcounts before the L2 entries of each table point at them. With extended L2
 * entries, as QEMU 7.2, the entries get host clusters with their subcluster bitmaps unchanged (new ones all
 * unallocated, reading from the backing file or as zero, which is why QEMU allows a backing file then) and nothing
 * is written into the clusters; zero clusters keep their flag. The old last cluster's head is copied from what the
 * guest read there (the backing file, for one that ends inside it). Growing with falloc or full over a longer
 * backing file makes the new clusters ordinary data, as QEMU's truncate does (every subcluster allocated, the old
 * last cluster rewritten with the guest's view of it, all synced before the entries). With an external data file
 * (always for a raw one, as QEMU), the data file grows to the end of the last new cluster and is synced, zeroes
 * included, before the L2 entries point at their guest offsets in it. In an encrypted image what the guest can read
 * (the heads and tails copied, the clusters materialized) is written encrypted; the rest of a preallocated cluster
 * decrypts the file's zeroes to noise, as in QEMU.
 */
final class Qcow2Preallocation extends Qcow2Room {
    private final Qcow2Tables tables;
    private final Qcow2Claims claims;
    private final Qcow2CopyOnWrite cow;

    Qcow2Preallocation(Qcow2State st, Qcow2Tables tables, Qcow2Claims claims, Qcow2CopyOnWrite cow) {
        super(st);
        this.tables = tables;
        this.claims = claims;
        this.cow = cow;
    }

    /**
     * Preallocates the guest range {@code [from, to)} as QEMU's qcow2 truncate does: every unallocated
     * cluster gets an L2 entry and a host cluster; with {@code metadata} the host clusters stay holes of the
     * file (reading as zero), with {@code falloc} and {@code full} the file's new space is reserved or
     * written with zeroes. Host clusters reused below the old end of the file are zeroed first. Per L2 table:
     * the refcounts (and the zeroing) are synced before the L2 entries are written. Called with the
     * allocation lock held, by create and by resize. With extended L2 entries, as in QEMU 7.2, the entries
     * get their host clusters but their subcluster bitmaps stay as they are (new ones: all unallocated, reading
     * from the backing file or as zero), nothing is written into the clusters, and the file ends where the
     * guest's last byte would be; zero clusters keep their flag.
     */
    void preallocate(long from, long to, Preallocation mode) throws IOException {
        preallocate(from, to, mode, false, BackingReader.ZEROES);
    }

    /**
     * {@link #preallocate(long, long, Preallocation)} reading the head of the old last cluster from {@code below};
     * with {@code allocated} (falloc or full over a longer backing file, whose new area was zeroed: as QEMU's
     * truncate, which then lets the file's new space provide the zeroes) the clusters become ordinary data: no
     * zero flag, every subcluster allocated, the guest's view of the old last cluster written into it.
     */
    void preallocate(long from, long to, Preallocation mode, boolean allocated, BackingReader below)
            throws IOException {
        st.requireWritable(-1);
        claims.lock();
        try {
            claims.awaitQuiet();
            if (st.header.hasDataFile()) {
                preallocateDataFile(from, to, mode, below);
                return;
            }
            long oldEnd = storage.size();
            long c = from >>> clusterBits;
            long last = Qcow2Checks.divCeil(to, clusterSize);
            // moderate runs, which fill holes of covered space first
            int maxRun = st.refcounts.maxRun();
            long lastHost = -1;
            long lastEnd = -1;
            while (c < last) {
                int l1Index = st.geometry.l1Index(c);
                long l1e = st.l1[l1Index];
                long l2Offset = l1e & OFFSET_MASK;
                if (l2Offset == 0) {
                    l2Offset = tables.allocateL2(l1Index);
                } else if ((l1e & COPIED) == 0) {
                    l2Offset = tables.copyL2(l1Index, l2Offset);
                }
                long[] table = tables.table(l2Offset);
                int start = st.geometry.l2Index(c);
                int end = (int) Math.min(1L << l2Bits, start + (last - c));
                // with extended L2 entries, entry i is words 2i (entry) and 2i + 1 (subcluster bitmap)
                int w = extendedL2 ? 2 : 1;
                long[] entries = Arrays.copyOfRange(table, start * w, end * w);
                int count = end - start;
                boolean changed = false;
                long growTo = storage.size();
                for (int i = 0; i < count; ) {
                    if (!unhosted(entries[i * w])) {
                        if (allocated) {
                            changed |= materialize(entries, i, w, (c + i) << clusterBits, below);
                        }
                        i++;
                        continue;
                    }
                    int n = 1;
                    while (i + n < count && n < maxRun && unhosted(entries[(i + n) * w])) {
                        n++;
                    }
                    long sizeBefore = storage.size();
                    long host = st.refcounts.allocateRun(n) << clusterBits;
                    long runEnd = host + (long) n * clusterSize;
                    long guest = (c + i) << clusterBits;
                    long lastGuest = (c + i + n - 1) << clusterBits;
                    // as QEMU's preallocate_co: with extended L2 entries nothing is written (the subclusters stay
                    // unallocated, so nothing is copied on allocation), and the file ends where the guest does
                    long fileEnd = extendedL2 && mode == Preallocation.METADATA
                            ? Math.min(runEnd, runEnd - clusterSize + (to - lastGuest)) : runEnd;
                    if (fileEnd > storage.size()) {
                        // before the writes below, which would grow the file without reserving space
                        storage.resize(fileEnd, mode == Preallocation.METADATA ? Preallocation.OFF : mode);
                    } else if (mode != Preallocation.METADATA && fileEnd > Math.max(sizeBefore, host)) {
                        // refcount blocks the run needed went right after it, growing the file over the run without
                        // reserving its space: reserve it now
                        long at = Math.max(sizeBefore, host);
                        storage.writeZeroes(at, fileEnd - at, false);
                    }
                    if (host < oldEnd) {
                        // freed clusters may hold old data: they must read as zero like the new space
                        long zeroEnd = Math.min(runEnd, oldEnd);
                        storage.writeZeroes(host, zeroEnd - host, mode == Preallocation.METADATA);
                    }
                    if ((!extendedL2 || allocated) && guest < from) {
                        // the old last cluster: QEMU copies its head (what the guest reads there) on allocation
                        long e = entries[i * w];
                        ByteBuffer head = ByteBuffer.allocate((int) (from - guest));
                        (extendedL2 ? cow.subclusterSource(guest, 0, entries[i * w + 1], below)
                                : (e & ZERO_FLAG) != 0 ? BackingReader.ZEROES : below).read(head, guest);
                        st.writeData(head.flip(), host);
                    }
                    if (!extendedL2 && lastGuest + clusterSize > to) {
                        // the new last cluster: QEMU copies its tail (zeroes) on allocation, so it is written
                        // (encrypted in an encrypted image, so that a later growth reads zeroes there, not noise)
                        st.writeData(ByteBuffer.allocate((int) (lastGuest + clusterSize - to)),
                                runEnd - (lastGuest + clusterSize - to));
                    }
                    growTo = Math.max(growTo, fileEnd);
                    lastHost = runEnd - clusterSize;
                    lastEnd = fileEnd;
                    for (int k = 0; k < n; k++) {
                        // a zero cluster stays one (as in QEMU), now with a host cluster; a subcluster bitmap stays
                        int at = (i + k) * w;
                        entries[at] = (host + (long) k * clusterSize) | COPIED
                                | (allocated ? 0 : entries[at] & ZERO_FLAG);
                        if (allocated && extendedL2) {
                            entries[at + 1] = SUB_ALLOC_ALL;
                        }
                    }
                    changed = true;
                    i += n;
                }
                if (changed) {
                    st.growFile(growTo);
                    // the refcounts and the zeroed clusters reach stable media before the L2 entries
                    st.syncAll();
                    ByteBuffer b = ByteBuffer.allocate(entries.length * 8).order(ByteOrder.BIG_ENDIAN);
                    b.asLongBuffer().put(entries);
                    storage.write(b, l2Offset + start * 8L * w);
                    System.arraycopy(entries, 0, table, start * w, entries.length);
                }
                c += end - start;
            }
            if (lastHost >= 0) {
                // QEMU's file ends with the last preallocated cluster (for metadata preallocation, with its last
                // table): nothing is counted past it, so end the file there
                long used = Qcow2Checks.divCeil(storage.size(), clusterSize) - 1;
                while (used >= 0 && st.refcounts.get(used) == 0) {
                    used--;
                }
                long end = lastEnd;
                if (used == lastHost >>> clusterBits && storage.size() > end) {
                    storage.resize(end, Preallocation.OFF);
                }
            }
        } finally {
            claims.unlock();
        }
    }

    /**
     * For {@link #preallocate} with {@code allocated}: makes the cluster of entry {@code i} (with a host cluster)
     * ordinary data, its host cluster holding what the guest reads there (zeroes for a zero cluster, zero or
     * unallocated subclusters read as they read now); not for compressed clusters or clusters a snapshot shares.
     * Returns whether the entry changed; the caller syncs before writing it.
     */
    private boolean materialize(long[] entries, int i, int w, long guest, BackingReader below) throws IOException {
        long e = entries[i * w];
        if ((e & COMPRESSED) != 0 || (e & COPIED) == 0) {
            return false;
        }
        long host = e & OFFSET_MASK;
        if (!extendedL2) {
            if ((e & ZERO_FLAG) == 0) {
                return false;
            }
            if (st.crypto != null) {
                // encrypted zeroes are not zero bytes
                st.writeData(ByteBuffer.allocate(clusterSize), host);
            } else {
                storage.writeZeroes(host, clusterSize, false);
            }
            entries[i] = e & ~ZERO_FLAG;
            return true;
        }
        long bitmap = entries[i * w + 1];
        if (bitmap == SUB_ALLOC_ALL) {
            return false;
        }
        byte[] view = new byte[clusterSize];
        cow.subclusterSource(guest, host, bitmap, below).read(ByteBuffer.wrap(view), guest);
        st.writeData(ByteBuffer.wrap(view), host);
        entries[i * w + 1] = SUB_ALLOC_ALL;
        return true;
    }

    /** Whether an L2 entry (the first word of an extended one) has no host cluster and is not compressed. */
    private static boolean unhosted(long entry) {
        return (entry & COMPRESSED) == 0 && (entry & OFFSET_MASK) == 0;
    }

    /**
     * {@link #preallocate} with an external data file, as QEMU's preallocate_co: every cluster without one
     * gets the data file cluster at its guest offset (not refcounted); the data file grows to the end of the
     * last cluster ({@code falloc} and {@code full} reserve or write the new space), clusters below its old
     * end are zeroed, and all that is synced before the L2 entries of each table point at them. Under the
     * allocation lock. Zero clusters keep their flag and subcluster bitmaps stay as they are, so that a backing
     * file still shows through unallocated subclusters, as in QEMU.
     */
    private void preallocateDataFile(long from, long to, Preallocation mode, BackingReader below) throws IOException {
        Storage data = st.dataStorage();
        long oldEnd = data.size();
        long last = Qcow2Checks.divCeil(to, clusterSize);
        int w = extendedL2 ? 2 : 1;
        long lastL2 = st.l1[(int) ((last - 1) >>> l2Bits)] & OFFSET_MASK;
        long lastEntry = lastL2 == 0 ? 0
                : tables.table(lastL2)[(int) ((last - 1) & ((1L << l2Bits) - 1)) * w];
        // QEMU writes the tail of a new last cluster (zeroes, its copy-on-write), so the file then ends with it;
        // an allocated last cluster, or one with extended L2 entries (nothing is copied), only makes the file reach
        // the new size
        long end = extendedL2 || (lastEntry & OFFSET_MASK) != 0 || (lastEntry & COPIED) != 0 ? to
                : last << clusterBits;
        if (end > oldEnd) {
            data.resize(end, mode == Preallocation.METADATA ? Preallocation.OFF : mode);
        }
        long c = from >>> clusterBits;
        while (c < last) {
            int l1Index = st.geometry.l1Index(c);
            long l2Offset = st.l1[l1Index] & OFFSET_MASK;
            if (l2Offset == 0) {
                l2Offset = tables.allocateL2(l1Index);
            }
            long[] table = tables.table(l2Offset);
            int start = st.geometry.l2Index(c);
            int stop = (int) Math.min(1L << l2Bits, start + (last - c));
            // with extended L2 entries, entry i is words 2i (entry) and 2i + 1 (subcluster bitmap, kept as it is)
            long[] entries = Arrays.copyOfRange(table, start * w, stop * w);
            boolean changed = false;
            for (int i = 0; i < stop - start; i++) {
                long e = entries[i * w];
                // with a data file, COPIED alone marks guest cluster 0 as allocated
                if ((e & OFFSET_MASK) != 0 || (e & COPIED) != 0) {
                    continue;
                }
                long host = (c + i) << clusterBits;
                if (host < oldEnd) {
                    // the data file may hold old bytes there: the cluster must read as zero, as it did
                    data.writeZeroes(host, Math.min(clusterSize, oldEnd - host), mode == Preallocation.METADATA);
                }
                if (host < from && !extendedL2 && (e & ZERO_FLAG) == 0) {
                    // the old last cluster read from below: QEMU copies its head on allocation
                    ByteBuffer head = ByteBuffer.allocate((int) (from - host));
                    below.read(head, host);
                    st.writeData(head.flip(), host);
                }
                // a zero cluster stays one, now with its data file cluster (as in QEMU)
                entries[i * w] = host | COPIED | (e & ZERO_FLAG);
                changed = true;
            }
            if (changed) {
                // the grown and zeroed data file reaches stable media before the L2 entries point into it
                data.sync();
                st.syncAll();
                ByteBuffer b = ByteBuffer.allocate(entries.length * 8).order(ByteOrder.BIG_ENDIAN);
                b.asLongBuffer().put(entries);
                storage.write(b, l2Offset + start * 8L * w);
                System.arraycopy(entries, 0, table, start * w, entries.length);
            }
            c += stop - start;
        }
        // QEMU's image file ends with its last table: end it after the last cluster in use
        long fileEnd = storage.size();
        long used = st.refcounts.lastUsed(Qcow2Checks.divCeil(fileEnd, clusterSize));
        if ((used + 1) * clusterSize < fileEnd) {
            storage.resize((used + 1) * clusterSize, Preallocation.OFF);
        }
    }
}
