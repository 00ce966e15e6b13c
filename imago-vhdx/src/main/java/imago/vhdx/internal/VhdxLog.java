package imago.vhdx.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * The VHDX log: a circular buffer of entries, each a header sector (64-byte header and 32-byte descriptors) and
 * one 4 KiB data sector per data descriptor, all under one CRC-32C. Metadata updates are written here first, made
 * durable, then applied in place; after a crash the next writable open replays the active sequence.
 *
 * <p>Finding the active sequence (as the specification describes it): every 4 KiB position of the log may start an
 * entry; an entry is valid when its signature, checksum, log GUID (the header's), length, descriptors and data
 * sectors (signature and sequence number halves) agree. Valid entries whose sequence numbers follow each other at
 * consecutive positions form a sequence; the one ending in the highest sequence number wins, and is replayed from
 * the entry its last entry's tail names (a sequence whose tail is not in it is not complete, and is passed over).
 * Anything torn or invalid ends a sequence, so a half-written entry is never applied.
 */
final class VhdxLog {
    static final int SECTOR = 4096;
    static final int HEADER_BYTES = 64;
    static final int DESCRIPTOR_BYTES = 32;
    /** The largest log imago reads into memory to replay (qemu-img and Hyper-V write 1 MiB logs). */
    static final long MAX_REPLAY_LOG = 64 * VhdxFields.MIB;
    /** How many times over its length the search may checksum the log before it gives up (hostile logs). */
    static final int CHECKSUM_BUDGET = 8;
    /** How far past the end of the file a valid entry may say the file reached. */
    static final long MAX_GROWTH = 1L << 30;

    private VhdxLog() {
    }

    /** One change a valid entry makes: {@code data} (4 KiB) or, when null, {@code zeroLength} zero bytes. */
    record Change(long fileOffset, ByteBuffer data, long zeroLength) {
    }

    /**
     * One valid entry.
     *
     * @param position its offset in the log
     * @param length its length
     * @param tail the log offset of the first entry of its sequence
     * @param sequence its sequence number
     * @param flushedFileOffset the file size the writer had made durable
     * @param lastFileOffset the file size when it was written
     * @param changes what it writes
     */
    record Entry(long position, long length, long tail, long sequence, long flushedFileOffset, long lastFileOffset,
            List<Change> changes) {
    }

    /**
     * The active sequence of the log in {@code log} (the whole log region), entries with {@code guid} only, or an
     * empty list when there is none.
     */
    static List<Entry> activeSequence(ByteBuffer log, UUID guid, String name, long logOffset, long fileLimit)
            throws ImageLimitException {
        int length = log.capacity();
        Map<Integer, Entry> valid = new HashMap<>();
        long[] budget = {(long) CHECKSUM_BUDGET * length};
        for (int p = 0; p < length; p += SECTOR) {
            Entry e = parse(log, p, guid, logOffset, fileLimit, budget);
            if (budget[0] < 0) {
                throw new ImageLimitException(name, logOffset + p, "the log's entries claim more than "
                        + CHECKSUM_BUDGET + " times the log's length to checksum; refusing to search it further");
            }
            if (e != null) {
                valid.put(p, e);
            }
        }
        // a sequence is searched from its head only (an entry no valid predecessor leads to), so that each entry
        // is walked once
        java.util.Set<Integer> continued = new java.util.HashSet<>();
        for (Entry e : valid.values()) {
            Entry next = valid.get((int) ((e.position() + e.length()) % length));
            if (next != null && next != e && next.sequence() == e.sequence() + 1) {
                continued.add((int) next.position());
            }
        }
        List<Entry> best = List.of();
        for (Entry first : valid.values()) {
            if (continued.contains((int) first.position())) {
                continue;
            }
            List<Entry> chain = new ArrayList<>(List.of(first));
            long used = first.length();
            Entry last = first;
            while (true) {
                Entry next = valid.get((int) ((last.position() + last.length()) % length));
                if (next == null || next.sequence() != last.sequence() + 1 || used + next.length() > length) {
                    break;
                }
                chain.add(next);
                used += next.length();
                last = next;
            }
            long tail = last.tail();
            int from = -1;
            for (int i = 0; i < chain.size(); i++) {
                if (chain.get(i).position() == tail) {
                    from = i;
                }
            }
            if (from >= 0 && (best.isEmpty() || last.sequence() > best.getLast().sequence())) {
                best = List.copyOf(chain.subList(from, chain.size()));
            }
        }
        return best;
    }

    /** The entry at {@code p} if it is valid, else null. */
    private static Entry parse(ByteBuffer log, int p, UUID guid, long logOffset, long fileLimit, long[] budget) {
        int logLength = log.capacity();
        if (log.getInt(p) != VhdxFields.LOG_ENTRY_SIGNATURE) {
            return null;
        }
        long entryLength = log.getInt(p + 8) & 0xFFFF_FFFFL;
        long tail = log.getInt(p + 12) & 0xFFFF_FFFFL;
        long sequence = log.getLong(p + 16);
        long count = log.getInt(p + 24) & 0xFFFF_FFFFL;
        if (entryLength < SECTOR || entryLength % SECTOR != 0 || entryLength > logLength || tail % SECTOR != 0
                || tail >= logLength || sequence == 0 || !VhdxFields.guid(log, p + 32).equals(guid)) {
            return null;
        }
        long descriptorArea = VhdxFields.roundUp(HEADER_BYTES + DESCRIPTOR_BYTES * count, SECTOR);
        if (descriptorArea > entryLength) {
            return null;
        }
        budget[0] -= entryLength;
        if (budget[0] < 0 || log.getInt(p + 4) != crc(log, p, (int) entryLength)) {
            return null;
        }
        ByteBuffer e = contiguous(log, p, (int) entryLength);
        long flushed = e.getLong(48);
        long last = e.getLong(56);
        if (flushed < 0 || last < flushed || last > fileLimit) {
            return null;
        }
        List<Change> changes = new ArrayList<>();
        long dataSector = descriptorArea;
        for (int i = 0; i < count; i++) {
            int d = HEADER_BYTES + DESCRIPTOR_BYTES * i;
            int sig = e.getInt(d);
            long fileOffset = e.getLong(d + 16);
            if (e.getLong(d + 24) != sequence || fileOffset < 0 || fileOffset % SECTOR != 0) {
                return null;
            }
            long changeLength;
            if (sig == VhdxFields.DATA_DESCRIPTOR_SIGNATURE) {
                if (dataSector + SECTOR > entryLength) {
                    return null;
                }
                int s = (int) dataSector;
                if (e.getInt(s) != VhdxFields.DATA_SECTOR_SIGNATURE || e.getInt(s + 4) != (int) (sequence >>> 32)
                        || e.getInt(s + SECTOR - 4) != (int) sequence) {
                    return null;
                }
                ByteBuffer block = VhdxFields.le(SECTOR);
                block.putLong(0, e.getLong(d + 8));
                block.put(8, e, s + 8, SECTOR - 12);
                block.putInt(SECTOR - 4, e.getInt(d + 4));
                changes.add(new Change(fileOffset, block, 0));
                dataSector += SECTOR;
                changeLength = SECTOR;
            } else if (sig == VhdxFields.ZERO_DESCRIPTOR_SIGNATURE) {
                changeLength = e.getLong(d + 8);
                if (changeLength <= 0 || changeLength % SECTOR != 0) {
                    return null;
                }
                changes.add(new Change(fileOffset, null, changeLength));
            } else {
                return null;
            }
            // never over the headers or the log itself, never past what the entry says the file was
            long end = fileOffset + changeLength;
            if (end < 0 || fileOffset < VhdxFields.HEADER_SECTION || end > last
                    || fileOffset < logOffset + logLength && end > logOffset) {
                return null;
            }
        }
        if (dataSector != entryLength) {
            return null;
        }
        return new Entry(p, entryLength, tail, sequence, flushed, last, changes);
    }

    /** CRC-32C of the entry of {@code length} bytes at {@code p} (wrapping at the log's end), checksum as 0. */
    private static int crc(ByteBuffer log, int p, int length) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        int first = Math.min(length, log.capacity() - p);
        crc.update(log.duplicate().clear().position(p).limit(p + 4));
        crc.update(new byte[4]);
        crc.update(log.duplicate().clear().position(p + 8).limit(p + first));
        if (first < length) {
            crc.update(log.duplicate().clear().position(0).limit(length - first));
        }
        return (int) crc.getValue();
    }

    private static ByteBuffer contiguous(ByteBuffer log, int p, int length) {
        ByteBuffer out = VhdxFields.le(length);
        int first = Math.min(length, log.capacity() - p);
        out.put(0, log, p, first);
        if (first < length) {
            out.put(first, log, 0, length - first);
        }
        return out;
    }

    /**
     * Replays {@code active}, the active sequence of the log {@code header} names ({@link #find}), and returns whether
     * there was anything to replay. The
     * caller then clears the header's log GUID.
     *
     * @throws CorruptImageException if the log lies outside the file or the file is shorter than the log says it
     *         was flushed to
     */
    static boolean replay(Storage storage, VhdxHeader header, List<Entry> active) throws IOException {
        if (active.isEmpty()) {
            return false;
        }
        String name = storage.name();
        long fileSize = storage.size();
        Entry last = active.getLast();
        if (fileSize < last.flushedFileOffset()) {
            throw new CorruptImageException(name, header.logOffset() + last.position() + 48, "the log says the file "
                    + "was " + last.flushedFileOffset() + " bytes long, but it has " + fileSize + ": truncated");
        }
        for (Entry e : active) {
            for (Change c : e.changes()) {
                if (c.data() != null) {
                    storage.write(c.data().duplicate().clear(), c.fileOffset());
                } else {
                    storage.writeZeroes(c.fileOffset(), c.zeroLength(), false);
                }
            }
        }
        if (storage.size() < last.lastFileOffset()) {
            storage.resize(last.lastFileOffset(), imago.api.Preallocation.OFF);
        }
        storage.sync();
        return true;
    }

    /** The active sequence of the log {@code header} names (empty if none). */
    static List<Entry> find(Storage storage, VhdxHeader header, long headerAt) throws IOException {
        String name = storage.name();
        long offset = header.logOffset();
        long length = header.logLength();
        long fileSize = storage.size();
        if (length == 0) {
            return List.of();
        }
        if (length % VhdxFields.MIB != 0 || offset % VhdxFields.MIB != 0 || offset < VhdxFields.HEADER_SECTION) {
            throw new CorruptImageException(name, headerAt + 68, "log of " + length
                    + " bytes at " + offset + " is not 1 MiB aligned after the first MiB");
        }
        if (length > MAX_REPLAY_LOG) {
            throw new ImageLimitException(name, headerAt + 68, "log of " + length + " bytes to "
                    + "replay (imago replays at most " + MAX_REPLAY_LOG + ")");
        }
        if (offset + length > fileSize) {
            throw new CorruptImageException(name, offset, "the log (" + length + " bytes at " + offset + ") is not "
                    + "inside the file (" + fileSize + " bytes)");
        }
        ByteBuffer log = VhdxFields.le((int) length);
        storage.read(log, offset);
        // replay may grow the file to what it was when an entry was written, which is at most a new block (256 MiB)
        // more than what was flushed before it: an entry reaching further than 1 GiB past the file is not valid
        return activeSequence(log.clear(), header.logGuid(), name, offset, fileSize + MAX_GROWTH);
    }

    /**
     * An entry of one data descriptor writing the 4 KiB {@code page} at {@code fileOffset}, at log position
     * {@code position} and being its own sequence (its tail is itself).
     */
    static ByteBuffer dataEntry(long position, long sequence, UUID guid, long fileSize, long fileOffset,
            ByteBuffer page) {
        ByteBuffer e = VhdxFields.le(2 * SECTOR);
        e.putInt(0, VhdxFields.LOG_ENTRY_SIGNATURE);
        e.putInt(8, 2 * SECTOR);
        e.putInt(12, (int) position);
        e.putLong(16, sequence);
        e.putInt(24, 1);
        VhdxFields.putGuid(e, 32, guid);
        e.putLong(48, fileSize);
        e.putLong(56, fileSize);
        e.putInt(64, VhdxFields.DATA_DESCRIPTOR_SIGNATURE);
        e.putInt(68, page.getInt(SECTOR - 4));
        e.putLong(72, page.getLong(0));
        e.putLong(80, fileOffset);
        e.putLong(88, sequence);
        e.putInt(SECTOR, VhdxFields.DATA_SECTOR_SIGNATURE);
        e.putInt(SECTOR + 4, (int) (sequence >>> 32));
        e.put(SECTOR + 8, page, 8, SECTOR - 12);
        e.putInt(2 * SECTOR - 4, (int) sequence);
        e.putInt(4, VhdxFields.crc(e, 0, 2 * SECTOR, 4));
        return e;
    }
}
