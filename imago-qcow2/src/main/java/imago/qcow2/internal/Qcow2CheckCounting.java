package imago.qcow2.internal;

import imago.api.Preallocation;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The counting of {@link Qcow2Check} (QEMU's calculate_refcounts): one more reference for every cluster the header,
 * the active and snapshot L1 and L2 tables, compressed ranges, the snapshot table, the refcount table and blocks and
 * the bitmaps use, each entry validated on the way. Memory is one entry per host cluster of the file; references
 * past the end of the file are refused before they could grow the array.
 */
final class Qcow2CheckCounting {
    /** Bitmap table entry offset bits (9-55). */
    private static final long BME_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00L;
    private static final long BME_RESERVED = 0xFF00_0000_0000_01FEL;

    private final Storage storage;

    Qcow2CheckCounting(Storage storage) {
        this.storage = storage;
    }

    void calculate(Qcow2CheckState st, Qcow2CheckResult res, Qcow2RefArray refs, boolean fixErrors, boolean[] rebuild)
            throws IOException {
        inc(st, res, refs, 0, st.clusterSize);
        checkL1(st, res, refs, st.header.l1TableOffset(), st.header.l1Size(), true);
        if (st.hasDataFile() && st.header.nbSnapshots() > 0) {
            res.message("ERROR " + st.header.nbSnapshots() + " snapshots in image with data file");
            res.corruptions++;
        }
        for (Qcow2Snapshot sn : st.snapshots) {
            if ((sn.l1TableOffset() & (st.clusterSize - 1)) != 0) {
                res.message("ERROR snapshot " + sn.id() + " (" + sn.name() + ") l1_offset=0x"
                        + Long.toHexString(sn.l1TableOffset()) + ": L1 table is not cluster aligned; snapshot table "
                        + "entry corrupted");
                res.corruptions++;
                continue;
            }
            if (Integer.toUnsignedLong(sn.l1Size()) > Qcow2Header.MAX_L1_BYTES / 8) {
                res.message("ERROR snapshot " + sn.id() + " (" + sn.name() + ") l1_size=0x"
                        + Integer.toHexString(sn.l1Size()) + ": L1 table is too large; snapshot table entry corrupted");
                res.corruptions++;
                continue;
            }
            checkL1(st, res, refs, sn.l1TableOffset(), sn.l1Size(), false);
        }
        inc(st, res, refs, st.header.snapshotsOffset(), st.snapshotsSize);
        inc(st, res, refs, st.header.refcountTableOffset(), (long) st.reftable.length * 8);
        // the LUKS header of an encrypted image, as QEMU counts it
        st.header.cryptoRegion().ifPresent(r -> inc(st, res, refs, r[0], r[1]));
        checkBitmaps(st, res, refs);
        checkRefblocks(st, res, refs, fixErrors, rebuild);
    }

    /** qcow2_inc_refcounts_imrt: one more reference to every cluster of {@code [offset, offset + size)}. */
    private void inc(Qcow2CheckState st, Qcow2CheckResult res, Qcow2RefArray refs, long offset, long size) {
        inc(st, res, refs, offset, size, 1);
    }

    /**
     * {@code times} more references to every cluster of {@code [offset, offset + size)}: the same counts as
     * {@code times} calls of {@link #inc(Qcow2CheckState, Qcow2CheckResult, Qcow2RefArray, long, long)} (messages said once).
     */
    private void inc(Qcow2CheckState st, Qcow2CheckResult res, Qcow2RefArray refs, long offset, long size, long times) {
        if (size <= 0) {
            return;
        }
        // the last cluster may be partly past the end of the file, never a whole cluster more
        if (offset < 0 || offset + size < 0 || offset + size - st.fileSize >= st.clusterSize) {
            res.message("ERROR: counting reference for region exceeding the end of the file by one cluster or "
                    + "more: offset 0x" + Long.toHexString(offset) + " size 0x" + Long.toHexString(size));
            res.corruptions += times;
            return;
        }
        long start = offset >>> st.clusterBits;
        long last = (offset + size - 1) >>> st.clusterBits;
        for (long k = start; k <= last; k++) {
            refs.ensure(k + 1);
            long r = refs.get(k);
            long room = st.refcountMax - r; // unsigned: the references that still fit
            if (Long.compareUnsigned(times, room) <= 0) {
                refs.set(k, r + times);
                continue;
            }
            refs.set(k, st.refcountMax);
            res.message("ERROR: overflow cluster offset=0x" + Long.toHexString(k << st.clusterBits));
            res.message("Use qemu-img amend to increase the refcount entry width or qemu-img convert to "
                    + "create a clean copy if the image cannot be opened for writing");
            res.corruptions += times - room;
        }
    }

    private void checkL1(Qcow2CheckState st, Qcow2CheckResult res, Qcow2RefArray refs, long l1Offset, int l1Size, boolean active)
            throws IOException {
        long bytes = Integer.toUnsignedLong(l1Size) * 8;
        if (bytes == 0) {
            return;
        }
        inc(st, res, refs, l1Offset, bytes);
        // entries past the end of the file read as zero and reference nothing: do not even read them, so that
        // tables a damaged header or snapshot table puts far past the end cost nothing
        long inFile = l1Offset < 0 || l1Offset >= st.fileSize ? 0 : (Math.min(bytes, st.fileSize - l1Offset) + 7) / 8;
        long[] l1 = st.readLongs(l1Offset, (int) inFile);
        // each distinct L2 table is walked once, with the number of entries naming it: a damaged L1 table whose
        // entries all name one table costs one walk, not one per entry (the counts are the same)
        Map<Long, Long> tables = new LinkedHashMap<>();
        for (int i = 0; i < l1.length; i++) {
            long e = l1[i];
            if (e == 0) {
                continue;
            }
            if ((e & Qcow2Entries.L1E_RESERVED) != 0) {
                res.message("ERROR found L1 entry with reserved bits set: " + Long.toHexString(e));
                res.corruptions++;
            }
            long l2Offset = e & Qcow2Entries.OFFSET_MASK;
            inc(st, res, refs, l2Offset, st.clusterSize);
            if ((l2Offset & (st.clusterSize - 1)) != 0) {
                res.message("ERROR l2_offset=" + Long.toHexString(l2Offset) + ": Table is not cluster aligned; L1 "
                        + "entry corrupted");
                res.corruptions++;
            }
            if (l2Offset < st.fileSize) { // past the end it reads as zeroes: nothing allocated, nothing to count
                tables.merge(l2Offset, 1L, Long::sum);
            }
        }
        for (Map.Entry<Long, Long> t : tables.entrySet()) {
            checkL2(st, res, refs, st.readLongs(t.getKey(), st.clusterSize / 8), active, t.getValue());
        }
    }

    /** check_refcounts_l2 for one table that {@code times} L1 entries name. */
    private void checkL2(Qcow2CheckState st, Qcow2CheckResult res, Qcow2RefArray refs, long[] l2, boolean active, long times) {
        long nextContiguous = 0;
        long allocated = 0;
        long fragmented = 0;
        long compressedCount = 0;
        int step = st.extendedL2 ? 2 : 1;
        for (int i = 0; i < st.l2Entries; i++) {
            long entry = l2[i * step];
            long bitmap = st.extendedL2 ? l2[i * step + 1] : 0;
            boolean compressed = (entry & Qcow2Entries.COMPRESSED) != 0;
            if (!compressed && (entry & Qcow2Entries.L2E_RESERVED) != 0) {
                res.message("ERROR found l2 entry with reserved bits set: " + Long.toHexString(entry));
                res.corruptions += times;
            }
            long offset = entry & Qcow2Entries.OFFSET_MASK;
            if (compressed) {
                if ((entry & Qcow2Entries.COPIED) != 0) {
                    res.message("ERROR: coffset=0x" + Long.toHexString(Qcow2Entries.compressedHost(entry, st.clusterBits)) + ": copied flag must "
                            + "never be set for compressed clusters");
                    res.corruptions += times;
                }
                if (st.hasDataFile()) {
                    res.message("ERROR compressed cluster " + i + " with data file, entry=0x" + Long.toHexString(entry));
                    res.corruptions += times;
                    continue;
                }
                if (bitmap != 0) {
                    res.message("ERROR compressed cluster " + i + " with non-zero subcluster allocation bitmap, "
                            + "entry=0x" + Long.toHexString(entry));
                    res.corruptions += times;
                    continue;
                }
                long coffset = Qcow2Entries.compressedHost(entry, st.clusterBits);
                long nbSectors = Qcow2Entries.compressedSectors(entry, st.clusterBits);
                inc(st, res, refs, coffset, nbSectors * 512 - (coffset & 511), times);
                allocated++;
                compressedCount++;
                fragmented++;
                continue;
            }
            boolean zeroFlag = !st.extendedL2 && (entry & Qcow2Entries.ZERO_FLAG) != 0;
            boolean normal = offset != 0 || (!zeroFlag && st.hasDataFile() && (entry & Qcow2Entries.COPIED) != 0);
            if (!normal) {
                if (!zeroFlag && (bitmap & 0xFFFF_FFFFL) != 0) {
                    res.message("ERROR: Unallocated cluster has non-zero subcluster allocation map");
                    res.corruptions += times;
                }
                continue;
            }
            if (((bitmap >>> 32) & bitmap) != 0) {
                res.message("ERROR offset=" + Long.toHexString(offset) + ": Allocated cluster has corrupted "
                        + "subcluster allocation bitmap");
                res.corruptions += times;
            }
            if ((offset & (st.clusterSize - 1)) != 0) {
                res.corruptions += times;
                boolean containsData = st.extendedL2 ? (bitmap & 0xFFFF_FFFFL) != 0 : !zeroFlag;
                res.message(containsData
                        ? "ERROR offset=" + Long.toHexString(offset) + ": Data cluster is not properly aligned; L2 "
                                + "entry corrupted."
                        : "ERROR offset=" + Long.toHexString(offset) + ": Preallocated cluster is not properly "
                                + "aligned; L2 entry corrupted.");
            }
            allocated++;
            if (nextContiguous != 0 && offset != nextContiguous) {
                fragmented++;
            }
            nextContiguous = offset + st.clusterSize;
            if (!st.hasDataFile()) {
                inc(st, res, refs, offset, st.clusterSize, times);
            }
        }
        if (active) {
            res.allocatedClusters += allocated * times;
            res.compressedClusters += compressedCount * times;
            res.fragmentedClusters += fragmented * times;
        }
    }

    /** qcow2_check_bitmaps_refcounts: the bitmap directory, tables and data clusters. */
    private void checkBitmaps(Qcow2CheckState st, Qcow2CheckResult res, Qcow2RefArray refs) throws IOException {
        if ((st.header.autoclearFeatures() & 1) == 0) {
            return;
        }
        Qcow2Extension ext = st.header.extensions().stream().filter(e -> e.type() == Qcow2Header.EXT_BITMAPS)
                .findFirst().orElse(null);
        if (ext == null || ext.data().length < 24) {
            return;
        }
        ByteBuffer b = ByteBuffer.wrap(ext.data()).order(ByteOrder.BIG_ENDIAN);
        long nb = Integer.toUnsignedLong(b.getInt(0));
        long dirSize = b.getLong(8);
        long dirOffset = b.getLong(16);
        if (nb == 0 || dirSize <= 0 || dirSize > (64L << 20) || dirOffset < 0 || dirOffset + dirSize > st.fileSize) {
            return;
        }
        inc(st, res, refs, dirOffset, dirSize);
        ByteBuffer dir = ByteBuffer.allocate((int) dirSize).order(ByteOrder.BIG_ENDIAN);
        storage.read(dir, dirOffset);
        int p = 0;
        for (long n = 0; n < nb && p + 24 <= dirSize; n++) {
            long tableOffset = dir.getLong(p);
            long tableSize = Integer.toUnsignedLong(dir.getInt(p + 8));
            int nameSize = Short.toUnsignedInt(dir.getShort(p + 18));
            long extra = Integer.toUnsignedLong(dir.getInt(p + 20));
            long entryLen = (24 + extra + nameSize + 7) & ~7L;
            p += (int) Math.min(entryLen, Integer.MAX_VALUE - p);
            if (tableSize > (1L << 22)) {
                continue;
            }
            inc(st, res, refs, tableOffset, tableSize * 8);
            long[] table = st.readLongs(tableOffset, (int) tableSize);
            for (long e : table) {
                if ((e & BME_RESERVED) != 0 || ((e & BME_OFFSET_MASK) & (st.clusterSize - 1)) != 0) {
                    res.message("ERROR bitmap table entry 0x" + Long.toHexString(e) + " is corrupted");
                    res.corruptions++;
                    continue;
                }
                long off = e & BME_OFFSET_MASK;
                if (off != 0) {
                    inc(st, res, refs, off, st.clusterSize);
                }
            }
        }
    }

    private void checkRefblocks(Qcow2CheckState st, Qcow2CheckResult res, Qcow2RefArray refs, boolean fixErrors, boolean[] rebuild)
            throws IOException {
        for (int i = 0; i < st.reftable.length; i++) {
            long e = st.reftable[i];
            long offset = e & Qcow2CheckState.REFT_OFFSET_MASK;
            long cluster = offset >>> st.clusterBits;
            if ((e & Qcow2CheckState.REFT_RESERVED) != 0) {
                res.message("ERROR refcount table entry " + i + " has reserved bits set");
                res.corruptions++;
                rebuild[0] = true;
                continue;
            }
            if ((offset & (st.clusterSize - 1)) != 0) {
                res.message("ERROR refcount block " + i + " is not cluster aligned; refcount table entry corrupted");
                res.corruptions++;
                rebuild[0] = true;
                continue;
            }
            if (Long.compareUnsigned(cluster, refs.size()) >= 0) {
                res.corruptions++;
                res.message((fixErrors ? "Repairing" : "ERROR") + " refcount block " + i + " is outside image");
                if (fixErrors) {
                    // QEMU grows the file to reach the block; only where that keeps the check's memory bounded by
                    // the file it was given (a block far past the end is rebuilt instead)
                    if (offset < 0 || offset > Qcow2Checks.MAX_HOST_OFFSET
                            || (offset >>> st.clusterBits) > 4 * refs.size() + 1024) {
                        rebuild[0] = true;
                        res.message("ERROR could not resize image: File too large");
                        continue;
                    }
                    storage.resize(offset + st.clusterSize, Preallocation.OFF);
                    st.fileSize = storage.size();
                    refs.ensure(Qcow2Checks.divCeil(st.fileSize, st.clusterSize));
                    res.corruptions--;
                    res.corruptionsFixed++;
                    inc(st, res, refs, offset, st.clusterSize);
                }
                continue;
            }
            if (offset != 0) {
                inc(st, res, refs, offset, st.clusterSize);
                long r = refs.get(cluster);
                if (r != 1) {
                    res.message("ERROR refcount block " + i + " refcount=" + Long.toUnsignedString(r));
                    res.corruptions++;
                    rebuild[0] = true;
                }
            }
        }
    }
}
