package imago.qcow2.internal;

import imago.api.BitmapInfo;
import imago.api.DirtyRun;
import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.DirtyBitmaps;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * Reads the persistent dirty bitmaps of an image ({@link DirtyBitmaps}): through the tracker when the image is
 * open for writing (so that writes since the open show), else from the stored tables and data clusters. A bitmap
 * that was in use when the image was opened is inconsistent and refused, as QEMU refuses to export it.
 */
final class Qcow2DirtyBitmaps implements DirtyBitmaps {
    private final Storage storage;
    private final int clusterBits;
    private final long fileSize;
    private final LongSupplier size;
    private final List<Qcow2Bitmaps.Bitmap> atOpen;
    private final Qcow2BitmapTracker tracker;
    /** Bitmap tables of a read-only image, loaded on first use. */
    private final Map<String, long[]> tables = new ConcurrentHashMap<>();

    Qcow2DirtyBitmaps(Storage storage, int clusterBits, long fileSize, LongSupplier size,
            List<Qcow2Bitmaps.Bitmap> atOpen, Qcow2BitmapTracker tracker) {
        this.storage = storage;
        this.clusterBits = clusterBits;
        this.fileSize = fileSize;
        this.size = size;
        this.atOpen = List.copyOf(atOpen);
        this.tracker = tracker;
    }

    @Override
    public List<String> names() {
        return list().stream().map(BitmapInfo::name).toList();
    }

    @Override
    public List<BitmapInfo> list() {
        if (tracker != null) {
            return tracker.infos();
        }
        return atOpen.stream().map(b -> new BitmapInfo(b.name(), 1L << b.granularityBits(),
                (b.flags() & Qcow2Bitmaps.FLAG_AUTO) != 0, (b.flags() & Qcow2Bitmaps.FLAG_IN_USE) != 0)).toList();
    }

    /** Bitmap {@code name} as listed now, flagged in use only if it was when the image was opened. */
    private Qcow2Bitmaps.Bitmap lookup(String name) {
        if (tracker != null) {
            Qcow2TrackedBitmap t = tracker.find(name);
            if (t == null) {
                throw new IllegalArgumentException("Bitmap '" + name + "' is not found");
            }
            return new Qcow2Bitmaps.Bitmap(name, t.granularityBits, t.inUseAtOpen ? Qcow2Bitmaps.FLAG_IN_USE : 0,
                    t.tableOffset, t.tableSize, t.position);
        }
        return atOpen.stream().filter(x -> x.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("Bitmap '" + name + "' is not found"));
    }

    @Override
    public DirtyRun run(String name, long offset, long maxLength) throws IOException {
        Qcow2Bitmaps.Bitmap b = lookup(name);
        if ((b.flags() & Qcow2Bitmaps.FLAG_IN_USE) != 0) {
            throw new UnsupportedFeatureException(storage.name(), Feature.PERSISTENT_BITMAPS,
                    "qcow2 inconsistent bitmap", "Bitmap '" + name + "' is inconsistent and cannot be used");
        }
        long end = Math.min(offset + maxLength, size.getAsLong());
        int g = b.granularityBits();
        long bit = offset >>> g;
        long lastBit = (end - 1) >>> g;
        long perCluster = 8L << clusterBits;
        boolean dirty = bitOf(words(b, (int) (bit / perCluster)), bit % perCluster);
        // scan cluster by cluster for the first bit that differs
        long at = bit;
        while (at <= lastBit) {
            int index = (int) (at / perCluster);
            long[] words = words(b, index);
            long base = index * perCluster;
            long from = at - base;
            long to = Math.min(lastBit - base + 1, perCluster);
            long change = firstDifferent(words, from, to, dirty);
            if (change < to) {
                at = base + change;
                break;
            }
            at = base + to;
        }
        long runEnd = Math.min(end, at << g);
        return new DirtyRun(offset, runEnd - offset, dirty);
    }

    private static boolean bitOf(long[] words, long i) {
        return (words[(int) (i >>> 6)] & (1L << i)) != 0;
    }

    /** The first bit in {@code [from, to)} that is not {@code value}, or {@code to}. */
    private static long firstDifferent(long[] words, long from, long to, boolean value) {
        long i = from;
        while (i < to) {
            long w = words[(int) (i >>> 6)];
            if (value) {
                w = ~w;
            }
            w &= -1L << i; // bits from i within this word
            if (w != 0) {
                return Math.min(to, (i & ~63L) + Long.numberOfTrailingZeros(w));
            }
            i = (i & ~63L) + 64;
        }
        return to;
    }

    private long[] words(Qcow2Bitmaps.Bitmap b, int index) throws IOException {
        int clusterSize = 1 << clusterBits;
        long[] words = new long[clusterSize / 8];
        Qcow2BitmapTracker.Snapshot now = tracker == null ? null : tracker.snapshot(b.name(), index);
        long entry;
        if (now != null) {
            entry = now.entry();
        } else {
            long[] table = tables.get(b.name());
            if (table == null) {
                table = Qcow2BitmapTracker.readTable(storage, b, clusterBits, fileSize);
                tables.put(b.name(), table);
            }
            entry = index < table.length ? table[index] : 0;
        }
        long data = entry & Qcow2Bitmaps.ENTRY_OFFSET_MASK;
        if (data != 0) {
            ByteBuffer buf = ByteBuffer.allocate(clusterSize).order(ByteOrder.LITTLE_ENDIAN);
            storage.read(buf, data);
            buf.flip().asLongBuffer().get(words);
        } else if (entry == Qcow2Bitmaps.ENTRY_ALL_ONES) {
            java.util.Arrays.fill(words, -1L);
        }
        if (now != null) {
            // stored bits a shrink dropped are gone; the bits set since the open are added; none past the end
            long perCluster = 8L * clusterSize;
            long base = index * perCluster;
            Qcow2Bitmaps.clearFrom(words, Math.clamp(now.keptBits() - base, 0, perCluster));
            if (now.overlay() != null) {
                for (int w = 0; w < words.length; w++) {
                    words[w] |= now.overlay()[w];
                }
            }
            long bits = Qcow2Bitmaps.bitCount(now.size(), b.granularityBits());
            Qcow2Bitmaps.clearFrom(words, Math.clamp(bits - base, 0, perCluster));
        }
        return words;
    }
}
