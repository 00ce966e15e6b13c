package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Bitmaps.ENTRY_ALL_ONES;
import static imago.qcow2.internal.Qcow2Bitmaps.ENTRY_OFFSET_MASK;
import static imago.qcow2.internal.Qcow2Bitmaps.bitCount;
import static imago.qcow2.internal.Qcow2Bitmaps.clearFrom;
import static imago.qcow2.internal.Qcow2Bitmaps.tableEntries;

import imago.api.ImageException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Stores the bitmaps of a {@link Qcow2BitmapTracker} on a clean close, in an order a crash cannot break: the changed
 * clusters of bitmap data and new tables go into new clusters, made durable; then the directory points at them with
 * the in-use flags cleared (written in place in QEMU's three synced steps around the autoclear bit, or, when bitmaps
 * were added or removed, written anew elsewhere and switched to by one write of cluster 0, as QEMU's
 * update_ext_header_and_dir); only then are the old clusters released. Runs under the tracker's lock.
 */
final class Qcow2BitmapStore {
    private final Qcow2BitmapTracker tr;
    private final Qcow2BitmapTracker.Host host;
    private final List<Long> released = new ArrayList<>();

    Qcow2BitmapStore(Qcow2BitmapTracker tracker, Qcow2BitmapTracker.Host host) {
        this.tr = tracker;
        this.host = host;
    }

    /**
     * Stores every bitmap that changed or that the tracker marked in use, then the directory. Called on a clean
     * close, with no request in flight.
     */
    static void store(Qcow2BitmapTracker tracker, Qcow2BitmapTracker.Host host) throws IOException {
        synchronized (tracker) {
            if (tracker.changed()) {
                new Qcow2BitmapStore(tracker, host).storeAll();
            }
        }
    }

    private void storeAll() throws IOException {
        List<Qcow2TrackedBitmap> stored = new ArrayList<>();
        for (Qcow2TrackedBitmap t : tr.bitmaps) {
            if (t.pending || t.marked) {
                storeOne(t);
                stored.add(t);
            }
        }
        host.commit();
        for (Qcow2TrackedBitmap t : stored) {
            t.flags &= ~Qcow2Bitmaps.FLAG_IN_USE;
        }
        if (tr.layoutChanged) {
            relocateDirectory();
        } else {
            tr.writeDirectoryInPlace();
        }
        for (Qcow2TrackedBitmap t : tr.bitmaps) {
            t.marked = false;
            t.pending = false;
        }
        tr.activated = false;
        for (long c : released) {
            host.release(c);
        }
        host.commit();
    }

    private void storeOne(Qcow2TrackedBitmap t) throws IOException {
        int clusterSize = tr.clusterSize;
        long perCluster = 8L * clusterSize;
        long bits = bitCount(tr.size, t.granularityBits);
        int entries = (int) tableEntries(tr.size, t.granularityBits, tr.clusterBits);
        long[] old = t.table;
        long[] table = new long[entries];
        boolean same = entries == old.length && t.tableOffset != 0;
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
            // stored bits [0, keep) survive; [keep, valid) were dropped by a shrink or a clear; past newValid nothing
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
                tr.storage.read(buf.clear(), dataOffset);
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
                tr.storage.write(buf, c);
                table[i] = c;
            }
        }
        if (!same) {
            int clusters = (int) Qcow2Checks.divCeil(8L * entries, clusterSize);
            long at = host.allocateRun(clusters);
            // the table's bytes only, as QEMU writes it: the rest of its clusters is never read, and left unwritten
            // it takes no disk space at the end of the file (the same actual size as qemu-img's)
            ByteBuffer out = ByteBuffer.allocate(8 * entries).order(ByteOrder.BIG_ENDIAN);
            out.asLongBuffer().put(table);
            tr.storage.write(out, at);
            if (t.tableOffset != 0) {
                releaseTable(t.tableOffset, old.length);
            }
            t.tableOffset = at;
            t.tableSize = entries;
            t.table = table;
        }
        t.overlay.clear();
        t.storedBits = bits;
        t.keptBits = bits;
    }

    private void releaseTable(long offset, int entries) {
        int clusters = (int) Qcow2Checks.divCeil(8L * entries, tr.clusterSize);
        for (int k = 0; k < clusters; k++) {
            released.add(offset + ((long) k << tr.clusterBits));
        }
    }

    /**
     * Writes a new directory listing the bitmaps now into new clusters, makes it durable, then switches cluster 0's
     * bitmaps extension to it (or drops the extension and the autoclear bit when no bitmap is left); the old
     * directory and the removed bitmaps' clusters are released afterwards.
     */
    private void relocateDirectory() throws IOException {
        byte[] bytes = serialize();
        long at = 0;
        if (bytes.length > 0) {
            int clusters = (int) Qcow2Checks.divCeil(bytes.length, tr.clusterSize);
            at = host.allocateRun(clusters);
            tr.storage.write(ByteBuffer.wrap(bytes), at); // its bytes only, as the table's
            host.commit();
        }
        long autoclear = bytes.length > 0 ? tr.autoclear | Qcow2Header.AUTOCLEAR_BITMAPS
                : tr.autoclear & ~Qcow2Header.AUTOCLEAR_BITMAPS;
        ByteBuffer ext = ByteBuffer.allocate(Qcow2Bitmaps.EXTENSION_SIZE).order(ByteOrder.BIG_ENDIAN)
                .putInt(0, tr.bitmaps.size()).putLong(8, bytes.length).putLong(16, at);
        host.headerChanged(Qcow2HeaderRewrite.rewrite(tr.storage, tr.clusterSize, h -> h
                .withExtension(Qcow2Header.EXT_BITMAPS, bytes.length > 0 ? ext.array() : null)
                .withAutoclear(autoclear)));
        if (tr.directory.length > 0) {
            long first = tr.directoryOffset >>> tr.clusterBits;
            long last = (tr.directoryOffset + tr.directory.length - 1) >>> tr.clusterBits;
            for (long c = first; c <= last; c++) {
                released.add(c << tr.clusterBits);
            }
        }
        for (Qcow2TrackedBitmap t : tr.removed) {
            releaseRemoved(t);
        }
        tr.removed.clear();
        tr.directoryOffset = at;
        tr.directory = bytes;
        tr.autoclear = autoclear;
        tr.layoutChanged = false;
    }

    /** The clusters of a removed bitmap; those of one whose table cannot be read (it was in use) are left leaked. */
    private void releaseRemoved(Qcow2TrackedBitmap t) {
        long[] table = t.table;
        if (table == null && t.tableOffset != 0) {
            try {
                table = Qcow2BitmapTracker.readTable(tr.storage, t.entry(), tr.clusterBits, tr.storage.size());
            } catch (IOException | RuntimeException e) {
                return; // a damaged table: its clusters leak, as check -r leaks can tell
            }
        }
        if (table == null) {
            return;
        }
        for (long e : table) {
            if ((e & ENTRY_OFFSET_MASK) != 0) {
                released.add(e & ENTRY_OFFSET_MASK);
            }
        }
        releaseTable(t.tableOffset, table.length);
    }

    /** The directory entries of the bitmaps now, each at its new position. */
    private byte[] serialize() throws ImageException {
        int total = 0;
        for (Qcow2TrackedBitmap t : tr.bitmaps) {
            total += entrySize(t);
        }
        ByteBuffer out = ByteBuffer.allocate(total).order(ByteOrder.BIG_ENDIAN);
        int pos = 0;
        for (Qcow2TrackedBitmap t : tr.bitmaps) {
            byte[] name = t.name.getBytes(StandardCharsets.UTF_8);
            out.putLong(pos, t.tableOffset).putInt(pos + 8, t.tableSize).putInt(pos + 12, t.flags)
                    .put(pos + 16, (byte) Qcow2Bitmaps.TYPE_DIRTY_TRACKING).put(pos + 17, (byte) t.granularityBits)
                    .putShort(pos + 18, (short) name.length).putInt(pos + 20, t.extra.length)
                    .put(pos + Qcow2Bitmaps.ENTRY_FIXED, t.extra)
                    .put(pos + Qcow2Bitmaps.ENTRY_FIXED + t.extra.length, name);
            t.position = pos;
            pos += entrySize(t);
        }
        return out.array();
    }

    private static int entrySize(Qcow2TrackedBitmap t) {
        int n = Qcow2Bitmaps.ENTRY_FIXED + t.extra.length + t.name.getBytes(StandardCharsets.UTF_8).length;
        return (n + 7) & ~7;
    }
}
