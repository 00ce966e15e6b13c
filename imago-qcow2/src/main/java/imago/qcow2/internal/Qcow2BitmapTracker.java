package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Bitmaps.ENTRY_ALL_ONES;
import static imago.qcow2.internal.Qcow2Bitmaps.ENTRY_OFFSET_MASK;
import static imago.qcow2.internal.Qcow2Bitmaps.ENTRY_RESERVED_MASK;
import static imago.qcow2.internal.Qcow2Bitmaps.bitCount;
import static imago.qcow2.internal.Qcow2Bitmaps.clearFrom;
import static imago.qcow2.internal.Qcow2Bitmaps.setRange;
import static imago.qcow2.internal.Qcow2Bitmaps.tableEntries;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Keeps the persistent dirty bitmaps of an image opened for writing true, with QEMU's protocol
 * (qcow2-bitmap.c): a bitmap is marked in use on the disk before the first change it has to record,
 * the bits of every guest write, zeroing and discard are set in memory while the image is open, and
 * a clean close stores each changed bitmap into new clusters, switches the directory to them with
 * the in-use flag cleared, and only then frees the old clusters. A crash in between leaves the
 * bitmap marked in use, which QEMU and imago report as inconsistent (its data is not trusted), never
 * a bitmap that silently misses writes.
 *
 * <p>Only the bits set since the open are held, a cluster of bitmap data for each cluster of the
 * bitmap they touch; the stored data is read back when the bitmap is written. Bitmaps that are
 * disabled (not {@code auto}) do not record writes; they, too, are resized with the image. Bitmaps
 * already in use when the image was opened are inconsistent: they are left as they are, and block a
 * resize as in QEMU.
 *
 * <p>Every directory update goes through QEMU's three steps: the bitmaps autoclear bit is cleared
 * (synced), the directory is rewritten in place (synced), the bit is set again (synced). A torn
 * directory is therefore never read as bitmaps; a crash between the steps loses the bitmaps and
 * leaks their clusters, as with QEMU.
 *
 * <p>Thread-safe: the methods are synchronized; the write path only takes the lock when the image
 * has a bitmap that records writes.
 */
final class Qcow2BitmapTracker {
    /** Bitmap tables held in memory for one image, at most (a real one has a few entries per bitmap). */
    static final long MAX_LOADED_TABLE_BYTES = 64L << 20;

    /** What the tracker needs of the image it belongs to: host clusters, and their refcounts made durable. */
    interface Host {
        /** A free host cluster, refcounted (1, in the cache), that nothing points at yet; its host offset. */
        long allocateCluster() throws IOException;

        /** {@code clusters} contiguous free host clusters, refcounted; the host offset of the first. */
        long allocateRun(int clusters) throws IOException;

        /** Writes the cached refcounts and syncs, so that everything written so far is on stable media. */
        void commit() throws IOException;

        /** Drops the one reference to the cluster at {@code hostOffset}: nothing on the disk points at it. */
        void release(long hostOffset) throws IOException;
    }

    /** One bitmap of the directory. */
    private static final class Tracked {
        final String name;
        final int granularityBits;
        final int position;
        final boolean inUseAtOpen;
        final boolean enabled;
        /** The directory entry's fields, as they are (or are about to be) on the disk. */
        int flags;
        long tableOffset;
        int tableSize;
        /** The bitmap table (null for a bitmap in use at open). */
        long[] table;
        /** Marked in use by this tracker: to be stored on close. */
        boolean active;
        /** Bits set since the open, per bitmap table index. */
        final Map<Integer, long[]> overlay = new HashMap<>();
        /** The bits of the bitmap as stored (past them, its data clusters hold zeros). */
        long storedBits;
        /** The fewest bits the bitmap had since it was stored: stored bits from here on are cleared. */
        long keptBits;

        Tracked(Qcow2Bitmaps.Bitmap b) {
            this.name = b.name();
            this.granularityBits = b.granularityBits();
            this.position = b.position();
            this.flags = b.flags();
            this.inUseAtOpen = (b.flags() & Qcow2Bitmaps.FLAG_IN_USE) != 0;
            this.enabled = !inUseAtOpen && (b.flags() & Qcow2Bitmaps.FLAG_AUTO) != 0;
            this.tableOffset = b.tableOffset();
            this.tableSize = b.tableSize();
        }
    }

    private final Storage storage;
    private final String resource;
    private final int clusterSize;
    private final int clusterBits;
    private final long directoryOffset;
    private final byte[] directory;
    private final List<Tracked> bitmaps;
    /** Whether any bitmap records writes: read without the lock on every write. */
    private final boolean recording;
    /** Whether the bitmaps that record writes are marked in use (until they are stored). */
    private volatile boolean activated;
    /** The autoclear field as it is on the disk. */
    private long autoclear;
    private long size;

    private Qcow2BitmapTracker(Storage storage, int clusterBits, Qcow2Bitmaps.Directory dir, List<Tracked> bitmaps,
            long autoclear, long size) {
        this.storage = storage;
        this.resource = storage.name();
        this.clusterBits = clusterBits;
        this.clusterSize = 1 << clusterBits;
        this.directoryOffset = dir.offset();
        this.directory = dir.bytes().clone();
        this.bitmaps = bitmaps;
        this.recording = bitmaps.stream().anyMatch(t -> t.enabled);
        this.autoclear = autoclear;
        this.size = size;
    }

    /**
     * The tracker of an image opened for writing whose directory lists {@code dir}'s bitmaps, or null
     * without bitmaps. Loads and validates the table of every bitmap not in use, as QEMU loads them on
     * open: a table that does not fit the image size, or an entry QEMU would reject, fails the open.
     *
     * @param autoclear the autoclear field as it is on the disk
     * @throws CorruptImageException for a damaged bitmap table (its offset named)
     * @throws ImageLimitException if the tables would take more than {@link #MAX_LOADED_TABLE_BYTES}
     */
    static Qcow2BitmapTracker open(Storage storage, Qcow2Header header, Qcow2Bitmaps.Directory dir, long fileSize,
            long size, long autoclear) throws IOException {
        if (dir.bitmaps().isEmpty()) {
            return null;
        }
        String resource = storage.name();
        int clusterBits = Integer.numberOfTrailingZeros(header.clusterSize());
        long loaded = 0;
        List<Tracked> list = new ArrayList<>(dir.bitmaps().size());
        for (Qcow2Bitmaps.Bitmap b : dir.bitmaps()) {
            Tracked t = new Tracked(b);
            long entryAt = dir.offset() + b.position();
            if (!t.inUseAtOpen) {
                long expected = tableEntries(size, b.granularityBits(), clusterBits);
                if (b.tableSize() != expected) {
                    throw new CorruptImageException(resource, entryAt + 8, "Could not read bitmap '" + b.name()
                            + "' from image: its table has " + b.tableSize() + " entries, an image of " + size
                            + " bytes needs " + expected);
                }
                loaded += 8L * b.tableSize();
                if (loaded > MAX_LOADED_TABLE_BYTES) {
                    throw new ImageLimitException(resource, entryAt + 8, "the bitmap tables take more than "
                            + MAX_LOADED_TABLE_BYTES + " bytes");
                }
                if (b.tableOffset() > fileSize - 8L * b.tableSize()) {
                    throw new CorruptImageException(resource, entryAt, "bitmap '" + b.name() + "': its table at 0x"
                            + Long.toHexString(b.tableOffset()) + " ends past the end of the file");
                }
                t.table = readTable(storage, b, clusterBits, fileSize);
                t.storedBits = bitCount(size, b.granularityBits());
                t.keptBits = t.storedBits;
            }
            list.add(t);
        }
        return new Qcow2BitmapTracker(storage, clusterBits, dir, List.copyOf(list), autoclear, size);
    }

    static long[] readTable(Storage storage, Qcow2Bitmaps.Bitmap b, int clusterBits, long fileSize)
            throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(8 * b.tableSize()).order(ByteOrder.BIG_ENDIAN);
        storage.read(buf, b.tableOffset());
        long[] table = new long[b.tableSize()];
        buf.flip().asLongBuffer().get(table);
        long clusterMask = (1L << clusterBits) - 1;
        for (int i = 0; i < table.length; i++) {
            long e = table[i];
            long offset = e & ENTRY_OFFSET_MASK;
            String problem = null;
            if ((e & ENTRY_RESERVED_MASK) != 0) {
                problem = "reserved bits set";
            } else if (offset != 0 && (e & ENTRY_ALL_ONES) != 0) {
                problem = "all-ones flag with a data cluster";
            } else if ((offset & clusterMask) != 0) {
                problem = "data cluster offset not aligned";
            } else if (offset != 0 && offset > fileSize - (1L << clusterBits)) {
                problem = "data cluster past the end of the file";
            }
            if (problem != null) {
                throw new CorruptImageException(storage.name(), b.tableOffset() + 8L * i, "bitmap '" + b.name()
                        + "': table entry " + i + " (0x" + Long.toHexString(e) + ") is invalid: " + problem);
            }
        }
        return table;
    }

    /**
     * The host ranges of the bitmap metadata as it is on the disk: the directory, and the table and data
     * clusters of each bitmap that is not in use, as {offset, bytes} pairs.
     */
    synchronized List<long[]> extents() {
        List<long[]> out = new ArrayList<>();
        out.add(new long[] {directoryOffset, directory.length});
        for (Tracked t : bitmaps) {
            if (t.table != null) {
                out.add(new long[] {t.tableOffset, 8L * t.tableSize});
                for (long e : t.table) {
                    if ((e & ENTRY_OFFSET_MASK) != 0) {
                        out.add(new long[] {e & ENTRY_OFFSET_MASK, clusterSize});
                    }
                }
            }
        }
        return out;
    }

    /** Cluster {@code index} of bitmap {@code name} now (entry, valid stored bits, bits since open, size) or null. */
    synchronized Snapshot snapshot(String name, int index) {
        Tracked t = bitmaps.stream().filter(b -> b.name.equals(name) && b.table != null).findFirst().orElse(null);
        long[] set = t == null ? null : t.overlay.get(index);
        return t == null ? null : new Snapshot(index < t.table.length ? t.table[index] : 0, t.keptBits,
                set == null ? null : set.clone(), size);
    }
    record Snapshot(long entry, long keptBits, long[] overlay, long size) { }

    /** Whether host cluster {@code c} holds part of the bitmap directory. */
    boolean inDirectory(long c, int clusterBits) {
        return c >= directoryOffset >>> clusterBits && c <= (directoryOffset + directory.length - 1) >>> clusterBits;
    }

    /** The directory's entries as they are now, for {@code qemu-img info}. */
    synchronized List<Qcow2Bitmaps.Bitmap> current() {
        List<Qcow2Bitmaps.Bitmap> out = new ArrayList<>(bitmaps.size());
        for (Tracked t : bitmaps) {
            out.add(new Qcow2Bitmaps.Bitmap(t.name, t.granularityBits, t.flags, t.tableOffset, t.tableSize,
                    t.position));
        }
        return List.copyOf(out);
    }

    /**
     * Marks the bitmaps that record writes in use on the disk, once: called before a change that
     * {@link #written} then records.
     */
    void beforeChange() throws IOException {
        if (recording && !activated) {
            synchronized (this) {
                activate(true);
            }
        }
    }

    /**
     * Records a change of guest bytes {@code [offset, offset + length)} in every bitmap that records
     * writes, marking them in use on the disk first. Called before the change can reach the disk.
     */
    void written(long offset, long length) throws IOException {
        if (!recording || length <= 0) {
            return;
        }
        synchronized (this) {
            if (!activated) {
                activate(true);
            }
            long end = Math.min(offset + length, size);
            if (end <= offset) {
                return;
            }
            for (Tracked t : bitmaps) {
                if (t.enabled) {
                    setBits(t, offset >>> t.granularityBits, ((end - 1) >>> t.granularityBits) + 1);
                }
            }
        }
    }

    /**
     * Refuses, before anything changes, a resize to {@code newSize} that the bitmaps cannot follow (as
     * QEMU's qcow2_truncate_bitmaps_check): an inconsistent bitmap, or one that would grow past QEMU's
     * limits. Then marks every bitmap in use, since each one is resized.
     *
     * @throws UnsupportedFeatureException (feature "qcow2 inconsistent bitmap") with QEMU's message
     */
    synchronized void beforeResize(long newSize) throws IOException {
        for (Tracked t : bitmaps) {
            if (t.inUseAtOpen) {
                throw new UnsupportedFeatureException(resource, Feature.PERSISTENT_BITMAPS, "qcow2 inconsistent bitmap", "Bitmap '" + t.name
                        + "' is inconsistent and cannot be used\nTry block-dirty-bitmap-remove to delete this "
                        + "bitmap from disk");
            }
            long entries = tableEntries(newSize, t.granularityBits, clusterBits);
            if (entries * clusterSize > Qcow2Bitmaps.MAX_PHYS_SIZE || entries == 0) {
                throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 bitmap size", "bitmap '" + t.name
                        + "' cannot follow a resize to " + newSize + " bytes: it would need " + entries
                        + " clusters of data");
            }
        }
        activate(false);
    }

    /** The image is now {@code newSize} bytes: bits past the end are dropped. */
    synchronized void resized(long newSize) {
        size = newSize;
        long perCluster = 8L * clusterSize;
        for (Tracked t : bitmaps) {
            if (t.table == null) {
                continue;
            }
            long bits = bitCount(newSize, t.granularityBits);
            t.keptBits = Math.min(t.keptBits, bits);
            t.overlay.keySet().removeIf(i -> (long) i * perCluster >= bits);
            long[] last = t.overlay.get((int) (bits / perCluster));
            if (last != null) {
                clearFrom(last, bits % perCluster);
            }
        }
    }

    /** Whether there is something to store on close. */
    synchronized boolean changed() {
        return bitmaps.stream().anyMatch(t -> t.active);
    }

    /**
     * Stores every bitmap this tracker marked in use: the changed clusters of bitmap data and a new table
     * in new clusters, made durable; then the directory pointing at them with the in-use flags cleared;
     * then the old clusters released. Called on a clean close, with no request in flight.
     */
    synchronized void store(Host host) throws IOException {
        if (!changed()) {
            return;
        }
        List<Long> released = new ArrayList<>();
        for (Tracked t : bitmaps) {
            if (t.active) {
                storeOne(t, host, released);
            }
        }
        host.commit();
        for (Tracked t : bitmaps) {
            if (t.active) {
                t.flags &= ~Qcow2Bitmaps.FLAG_IN_USE;
            }
        }
        writeDirectory();
        for (Tracked t : bitmaps) {
            t.active = false;
        }
        activated = false;
        for (long c : released) {
            host.release(c);
        }
        host.commit();
    }

    private void storeOne(Tracked t, Host host, List<Long> released) throws IOException {
        long perCluster = 8L * clusterSize;
        long bits = bitCount(size, t.granularityBits);
        int entries = (int) tableEntries(size, t.granularityBits, clusterBits);
        long[] old = t.table;
        long[] table = new long[entries];
        boolean same = entries == old.length;
        ByteBuffer buf = ByteBuffer.allocate(clusterSize).order(ByteOrder.LITTLE_ENDIAN);
        long[] words = new long[clusterSize / 8];
        for (int i = 0; i < Math.max(entries, old.length); i++) {
            long entry = i < old.length ? old[i] : 0;
            long dataOffset = entry & ENTRY_OFFSET_MASK;
            if (i >= entries) {
                if (dataOffset != 0) {
                    released.add(dataOffset);
                }
                continue;
            }
            long base = i * perCluster;
            // stored bits [0, keep) survive; [keep, valid) were dropped by a shrink; past newValid nothing
            long keep = Math.clamp(t.keptBits - base, 0, perCluster);
            long valid = Math.clamp(t.storedBits - base, 0, perCluster);
            long newValid = Math.clamp(bits - base, 0, perCluster);
            long[] set = t.overlay.get(i);
            boolean rewrite = set != null && !(entry == ENTRY_ALL_ONES && keep == perCluster)
                    || entry != 0 && keep < valid
                    || entry == ENTRY_ALL_ONES && keep < newValid;
            if (!rewrite) {
                table[i] = entry;
                continue;
            }
            same = false;
            Arrays.fill(words, 0);
            if (keep > 0 && dataOffset != 0) {
                storage.read(buf.clear(), dataOffset);
                buf.flip().asLongBuffer().get(words);
            } else if (keep > 0 && entry == ENTRY_ALL_ONES) {
                Arrays.fill(words, -1L);
            }
            clearFrom(words, keep);
            if (set != null) {
                for (int w = 0; w < words.length; w++) {
                    words[w] |= set[w];
                }
            }
            // no bit past the end of the image, as QEMU serializes them
            clearFrom(words, newValid);
            if (dataOffset != 0) {
                released.add(dataOffset);
            }
            if (Arrays.stream(words).allMatch(w -> w == 0)) {
                table[i] = 0;
            } else {
                long c = host.allocateCluster();
                buf.clear().asLongBuffer().put(words);
                storage.write(buf, c);
                table[i] = c;
            }
        }
        if (!same) {
            int clusters = (int) Qcow2Checks.divCeil(8L * entries, clusterSize);
            long at = host.allocateRun(clusters);
            ByteBuffer out = ByteBuffer.allocate(clusters * clusterSize).order(ByteOrder.BIG_ENDIAN);
            out.asLongBuffer().put(table);
            storage.write(out, at);
            int oldClusters = (int) Qcow2Checks.divCeil(8L * old.length, clusterSize);
            for (int k = 0; k < oldClusters; k++) {
                released.add(t.tableOffset + ((long) k << clusterBits));
            }
            t.tableOffset = at;
            t.tableSize = entries;
            t.table = table;
        }
        t.overlay.clear();
        t.storedBits = bits;
        t.keptBits = bits;
    }

    /** Marks the bitmaps this tracker must store in use on the disk: those that record writes, or all. */
    private void activate(boolean recordingOnly) throws IOException {
        List<Tracked> marked = new ArrayList<>();
        for (Tracked t : bitmaps) {
            if (!t.active && !t.inUseAtOpen && (t.enabled || !recordingOnly)) {
                t.active = true;
                t.flags |= Qcow2Bitmaps.FLAG_IN_USE;
                marked.add(t);
            }
        }
        if (!marked.isEmpty()) {
            try {
                writeDirectory();
            } catch (IOException | RuntimeException e) {
                for (Tracked t : marked) {
                    t.active = false;
                    t.flags &= ~Qcow2Bitmaps.FLAG_IN_USE;
                }
                throw e;
            }
        }
        activated = true;
    }

    /** Writes the directory with the current entries in place, in QEMU's three synced steps. */
    private void writeDirectory() throws IOException {
        ByteBuffer dir = ByteBuffer.wrap(directory).order(ByteOrder.BIG_ENDIAN);
        for (Tracked t : bitmaps) {
            dir.putLong(t.position, t.tableOffset);
            dir.putInt(t.position + 8, t.tableSize);
            dir.putInt(t.position + 12, t.flags);
        }
        writeAutoclear(autoclear & ~Qcow2Header.AUTOCLEAR_BITMAPS);
        storage.write(ByteBuffer.wrap(directory), directoryOffset);
        storage.flush();
        storage.sync();
        writeAutoclear(autoclear | Qcow2Header.AUTOCLEAR_BITMAPS);
    }

    private void writeAutoclear(long value) throws IOException {
        Qcow2Header.writeAutoclear(storage, value);
        storage.flush();
        storage.sync();
        autoclear = value;
    }

    /** Sets bits {@code [from, to)} of bitmap {@code t} in its overlay. */
    private void setBits(Tracked t, long from, long to) {
        long perCluster = 8L * clusterSize;
        while (from < to) {
            int index = (int) (from / perCluster);
            long base = index * perCluster;
            long end = Math.min(to, base + perCluster);
            long[] words = t.overlay.computeIfAbsent(index, k -> new long[clusterSize / 8]);
            setRange(words, from - base, end - base);
            from = end;
        }
    }

}
