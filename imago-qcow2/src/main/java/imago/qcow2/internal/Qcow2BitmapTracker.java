package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Bitmaps.ENTRY_ALL_ONES;
import static imago.qcow2.internal.Qcow2Bitmaps.ENTRY_OFFSET_MASK;
import static imago.qcow2.internal.Qcow2Bitmaps.ENTRY_RESERVED_MASK;
import static imago.qcow2.internal.Qcow2Bitmaps.bitCount;
import static imago.qcow2.internal.Qcow2Bitmaps.clearFrom;
import static imago.qcow2.internal.Qcow2Bitmaps.setRange;
import static imago.qcow2.internal.Qcow2Bitmaps.tableEntries;

import imago.api.BitmapInfo;
import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

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
 * <p>Every in-place directory update goes through QEMU's three steps: the bitmaps autoclear bit is
 * cleared (synced), the directory is rewritten in place (synced), the bit is set again (synced). A torn
 * directory is therefore never read as bitmaps; a crash between the steps loses the bitmaps and
 * leaks their clusters, as with QEMU. Bitmaps added or removed ({@link Qcow2BitmapEditor}) change
 * nothing on the disk until the close, which writes a new directory elsewhere and switches cluster 0 to
 * it ({@link Qcow2BitmapStore}).
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

        /** Cluster 0 was rewritten (the bitmaps extension): {@code header} is what it holds now. */
        void headerChanged(Qcow2Header header);
    }

    final Storage storage;
    final String resource;
    final int clusterSize;
    final int clusterBits;
    /** The directory as it is on the disk: its host offset (0 for none) and bytes. */
    long directoryOffset;
    byte[] directory;
    /** The bitmaps listed now, in directory order. */
    final List<Qcow2TrackedBitmap> bitmaps;
    /** Bitmaps removed since the directory was last written: their clusters are freed once it no longer lists them. */
    final List<Qcow2TrackedBitmap> removed = new ArrayList<>();
    /** Whether bitmaps were added or removed: the directory is then written anew, elsewhere, on close. */
    boolean layoutChanged;
    /** Whether any bitmap records writes: read without the lock on every write. */
    private volatile boolean recording;
    /** Whether the bitmaps that record writes are marked in use (until they are stored). */
    volatile boolean activated;
    /** The autoclear field as it is on the disk. */
    long autoclear;
    long size;

    private Qcow2BitmapTracker(Storage storage, int clusterBits, Qcow2Bitmaps.Directory dir,
            List<Qcow2TrackedBitmap> bitmaps, long autoclear, long size) {
        this.storage = storage;
        this.resource = storage.name();
        this.clusterBits = clusterBits;
        this.clusterSize = 1 << clusterBits;
        this.directoryOffset = dir.offset();
        this.directory = dir.bytes().clone();
        this.bitmaps = new ArrayList<>(bitmaps);
        this.autoclear = autoclear;
        this.size = size;
        updateRecording();
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
        if (header.version() < 3) {
            return null; // v2 images have no autoclear bits: no bitmaps
        }
        String resource = storage.name();
        int clusterBits = Integer.numberOfTrailingZeros(header.clusterSize());
        long loaded = 0;
        List<Qcow2TrackedBitmap> list = new ArrayList<>(dir.bitmaps().size());
        for (Qcow2Bitmaps.Bitmap b : dir.bitmaps()) {
            Qcow2TrackedBitmap t = new Qcow2TrackedBitmap(b, Qcow2Bitmaps.extraData(dir.bytes(), b.position()));
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
        return new Qcow2BitmapTracker(storage, clusterBits, dir, list, autoclear, size);
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
        if (directory.length > 0) {
            out.add(new long[] {directoryOffset, directory.length});
        }
        for (Qcow2TrackedBitmap t : bitmaps) {
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
        Qcow2TrackedBitmap t = bitmaps.stream().filter(b -> b.name.equals(name) && b.table != null).findFirst().orElse(null);
        long[] set = t == null ? null : t.overlay.get(index);
        return t == null ? null : new Snapshot(index < t.table.length ? t.table[index] : 0, t.keptBits,
                set == null ? null : set.clone(), size);
    }
    record Snapshot(long entry, long keptBits, long[] overlay, long size) { }

    /** Whether host cluster {@code c} holds part of the bitmap directory. */
    synchronized boolean inDirectory(long c, int clusterBits) {
        return directory.length > 0 && c >= directoryOffset >>> clusterBits && c <= (directoryOffset + directory.length - 1) >>> clusterBits;
    }

    /** The directory's entries as they are now, for {@code qemu-img info}. */
    synchronized List<Qcow2Bitmaps.Bitmap> current() {
        List<Qcow2Bitmaps.Bitmap> out = new ArrayList<>(bitmaps.size());
        for (Qcow2TrackedBitmap t : bitmaps) {
            out.add(t.entry());
        }
        return List.copyOf(out);
    }

    /** The bitmaps as {@link imago.api.Bitmaps#list()} lists them: in use only if they were when opened. */
    synchronized List<BitmapInfo> infos() {
        return bitmaps.stream().map(t -> new BitmapInfo(t.name, 1L << t.granularityBits,
                (t.flags & Qcow2Bitmaps.FLAG_AUTO) != 0, t.inUseAtOpen)).toList();
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
            for (Qcow2TrackedBitmap t : bitmaps) {
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
        for (Qcow2TrackedBitmap t : bitmaps) {
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
        for (Qcow2TrackedBitmap t : bitmaps) {
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
        return layoutChanged || bitmaps.stream().anyMatch(t -> t.pending || t.marked);
    }

    /**
     * Writes the entries of the bitmaps on the disk in place, in QEMU's three synced steps: the bitmaps autoclear bit
     * cleared, the directory, the bit set again.
     */
    synchronized void writeDirectoryInPlace() throws IOException {
        ByteBuffer dir = ByteBuffer.wrap(directory).order(ByteOrder.BIG_ENDIAN);
        for (Qcow2TrackedBitmap t : bitmaps) {
            if (t.onDisk()) {
                dir.putLong(t.position, t.tableOffset);
                dir.putInt(t.position + 8, t.tableSize);
                dir.putInt(t.position + 12, t.flags);
            }
        }
        writeAutoclear(autoclear & ~Qcow2Header.AUTOCLEAR_BITMAPS);
        storage.write(ByteBuffer.wrap(directory), directoryOffset);
        storage.flush();
        storage.sync();
        writeAutoclear(autoclear | Qcow2Header.AUTOCLEAR_BITMAPS);
    }

    private void writeAutoclear(long value) throws IOException {
        Qcow2HeaderFields.writeAutoclear(storage, value);
        storage.flush();
        storage.sync();
        autoclear = value;
    }

    /** Marks the bitmaps this tracker must store in use on the disk: those that record writes, or all. */
    private void activate(boolean recordingOnly) throws IOException {
        List<Qcow2TrackedBitmap> marked = new ArrayList<>();
        for (Qcow2TrackedBitmap t : bitmaps) {
            if (!t.marked && t.onDisk() && !t.inUseAtOpen && (t.enabled || !recordingOnly)) {
                t.marked = true;
                t.flags |= Qcow2Bitmaps.FLAG_IN_USE;
                marked.add(t);
            }
        }
        if (!marked.isEmpty()) {
            try {
                writeDirectoryInPlace();
            } catch (IOException | RuntimeException e) {
                for (Qcow2TrackedBitmap t : marked) {
                    t.marked = false;
                    t.flags &= ~Qcow2Bitmaps.FLAG_IN_USE;
                }
                throw e;
            }
        }
        activated = true;
    }

    // ------------------------------------------------------------------ edits (Qcow2BitmapEditor)

    /** The bitmap called {@code name}, or null. */
    synchronized Qcow2TrackedBitmap find(String name) {
        return bitmaps.stream().filter(t -> t.name.equals(name)).findFirst().orElse(null);
    }

    /** Adds an empty bitmap, stored on close. */
    synchronized void add(String name, int granularityBits, boolean enabled) {
        bitmaps.add(new Qcow2TrackedBitmap(name, granularityBits, enabled,
                (int) tableEntries(size, granularityBits, clusterBits)));
        layoutChanged = true;
        updateRecording();
    }

    /** Removes bitmap {@code t}: its clusters are freed once the directory written on close no longer lists it. */
    synchronized void remove(Qcow2TrackedBitmap t) {
        bitmaps.remove(t);
        if (t.onDisk()) {
            removed.add(t);
            layoutChanged = true;
        }
        updateRecording();
    }

    /** Clears every bit of consistent bitmap {@code t}. */
    synchronized void clear(Qcow2TrackedBitmap t) {
        t.keptBits = 0;
        t.overlay.clear();
        t.pending = true;
    }

    /** Makes consistent bitmap {@code t} record writes (its auto flag) or not. */
    synchronized void setEnabled(Qcow2TrackedBitmap t, boolean on) {
        t.enabled = on;
        t.flags = on ? t.flags | Qcow2Bitmaps.FLAG_AUTO : t.flags & ~Qcow2Bitmaps.FLAG_AUTO;
        t.pending = true;
        if (on && t.onDisk() && !t.marked) {
            activated = false; // the next write marks it in use first
        }
        updateRecording();
    }

    /** Marks guest bytes {@code [offset, offset + length)} dirty in consistent bitmap {@code t}. */
    synchronized void markDirty(Qcow2TrackedBitmap t, long offset, long length) {
        long end = Math.min(offset + length, size);
        if (end > offset) {
            setBits(t, offset >>> t.granularityBits, ((end - 1) >>> t.granularityBits) + 1);
            t.pending = true;
        }
    }

    /** The image's virtual size as the bitmaps know it. */
    synchronized long size() {
        return size;
    }

    private void updateRecording() {
        recording = bitmaps.stream().anyMatch(t -> t.enabled);
    }

    /** Sets bits {@code [from, to)} of bitmap {@code t} in its overlay. */
    private void setBits(Qcow2TrackedBitmap t, long from, long to) {
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
