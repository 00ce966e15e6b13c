package imago.qcow2.internal;

import java.util.HashMap;
import java.util.Map;

/**
 * One persistent bitmap as {@link Qcow2BitmapTracker} keeps it while the image is open: its directory entry as it is
 * (or is about to be) on the disk, its table, and the bits set since it was last stored. Guarded by the tracker's
 * lock.
 */
final class Qcow2TrackedBitmap {
    final String name;
    final int granularityBits;
    /** The entry's extra data, kept verbatim when the directory is written anew. */
    final byte[] extra;
    /** Whether the bitmap was in use when the image was opened: inconsistent, left as it is. */
    final boolean inUseAtOpen;
    /** Where the entry starts in the directory on the disk; -1 for a bitmap added since and not stored yet. */
    int position;
    /** Whether the bitmap records writes (the auto flag of a consistent bitmap). */
    boolean enabled;
    /** The directory entry's fields, as they are (or are about to be) on the disk. */
    int flags;
    long tableOffset;
    int tableSize;
    /** The bitmap table (null for a bitmap in use at open). */
    long[] table;
    /** Marked in use on the disk by the tracker: to be stored before the flag is cleared. */
    boolean marked;
    /** Changed since it was stored (bits, flags, or new): to be stored on close. */
    boolean pending;
    /** Bits set since the last store, per bitmap table index. */
    final Map<Integer, long[]> overlay = new HashMap<>();
    /** The bits of the bitmap as stored (past them, its data clusters hold zeros). */
    long storedBits;
    /** The fewest bits the bitmap had since it was stored: stored bits from here on are cleared. */
    long keptBits;

    Qcow2TrackedBitmap(Qcow2Bitmaps.Bitmap b, byte[] extra) {
        this.name = b.name();
        this.granularityBits = b.granularityBits();
        this.extra = extra;
        this.position = b.position();
        this.flags = b.flags();
        this.inUseAtOpen = (b.flags() & Qcow2Bitmaps.FLAG_IN_USE) != 0;
        this.enabled = !inUseAtOpen && (b.flags() & Qcow2Bitmaps.FLAG_AUTO) != 0;
        this.tableOffset = b.tableOffset();
        this.tableSize = b.tableSize();
    }

    /** A bitmap added while the image is open: empty, not on the disk until stored. */
    Qcow2TrackedBitmap(String name, int granularityBits, boolean enabled, int tableEntries) {
        this.name = name;
        this.granularityBits = granularityBits;
        this.extra = new byte[0];
        this.position = -1;
        this.inUseAtOpen = false;
        this.enabled = enabled;
        this.flags = enabled ? Qcow2Bitmaps.FLAG_AUTO : 0;
        this.table = new long[tableEntries];
        this.tableSize = tableEntries;
        this.pending = true;
    }

    /** The entry as the directory lists it now. */
    Qcow2Bitmaps.Bitmap entry() {
        return new Qcow2Bitmaps.Bitmap(name, granularityBits, flags, tableOffset, tableSize, position);
    }

    /** Whether the bitmap is stored on the disk (an entry of the directory there). */
    boolean onDisk() {
        return position >= 0;
    }
}
