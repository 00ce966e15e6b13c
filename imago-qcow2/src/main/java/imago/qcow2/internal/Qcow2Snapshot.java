package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Checks.u32;

import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.NoSuchSnapshotException;
import imago.api.SnapshotInfo;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * One entry of the snapshot table.
 *
 * @param l1TableOffset host offset of the snapshot's L1 table
 * @param l1Size its entries
 * @param id the id string
 * @param name the name
 * @param dateSec creation time, seconds
 * @param dateNsec creation time, nanoseconds
 * @param vmClockNsec guest clock in nanoseconds
 * @param vmStateSize saved VM state bytes (the 64-bit extra field when present)
 * @param diskSize the virtual size when the snapshot was taken, or -1 when not recorded
 * @param icount the instruction counter, or -1 when not recorded
 * @param entryOffset where the entry starts in the file
 */
record Qcow2Snapshot(long l1TableOffset, int l1Size, String id, String name, long dateSec, long dateNsec,
        long vmClockNsec, long vmStateSize, long diskSize, long icount, long entryOffset) {

    /** Fixed part of an entry. */
    static final int FIXED = 40;
    /** QEMU's QCOW_MAX_SNAPSHOT_EXTRA_DATA. */
    static final int MAX_EXTRA = 1024;

    /** The user-visible view. */
    SnapshotInfo info() {
        return new SnapshotInfo(id, name, vmStateSize, dateSec, dateNsec, vmClockNsec, icount);
    }

    /**
     * Parses one entry from {@code b} (positioned at the entry; advanced past it and its padding).
     */
    static Qcow2Snapshot parse(ByteBuffer b, String resource, long entryOffset) throws ImageException {
        ByteBuffer e = b.slice().order(ByteOrder.BIG_ENDIAN);
        long l1Offset = e.getLong(0);
        int l1Size = e.getInt(8);
        int idLen = Short.toUnsignedInt(e.getShort(12));
        int nameLen = Short.toUnsignedInt(e.getShort(14));
        long dateSec = u32(e.getInt(16));
        long dateNsec = u32(e.getInt(20));
        long vmClock = e.getLong(24);
        long vmState = u32(e.getInt(32));
        long extraLen = u32(e.getInt(36));
        if (extraLen > MAX_EXTRA) {
            throw new CorruptImageException(resource, entryOffset + 36, "Too much extra metadata in snapshot "
                    + "table entry (" + extraLen + " bytes)");
        }
        int total = (int) (FIXED + extraLen + idLen + nameLen);
        if (e.remaining() < total) {
            throw new IllegalArgumentException("entry buffer too short");
        }
        long diskSize = -1;
        long icount = -1;
        if (extraLen >= 8) {
            vmState = e.getLong(FIXED);
        }
        if (extraLen >= 16) {
            diskSize = e.getLong(FIXED + 8);
            if (diskSize < 0) {
                throw new CorruptImageException(resource, entryOffset + FIXED + 8, "snapshot disk size "
                        + Long.toUnsignedString(diskSize) + " is too large");
            }
        }
        if (extraLen >= 24) {
            icount = e.getLong(FIXED + 16);
        }
        byte[] id = new byte[idLen];
        e.get(FIXED + (int) extraLen, id);
        byte[] name = new byte[nameLen];
        e.get(FIXED + (int) extraLen + idLen, name);
        int padded = (total + 7) & ~7;
        b.position(b.position() + Math.min(padded, b.remaining()));
        return new Qcow2Snapshot(l1Offset, l1Size, new String(id, StandardCharsets.UTF_8),
                new String(name, StandardCharsets.UTF_8), dateSec, dateNsec, vmClock, vmState, diskSize, icount,
                entryOffset);
    }

    /** Bytes of the entry whose first {@link #FIXED} bytes are {@code fixed}: extra data, id and name included. */
    static long entryLength(ByteBuffer fixed) {
        return FIXED + u32(fixed.getInt(36)) + Short.toUnsignedInt(fixed.getShort(12))
                + Short.toUnsignedInt(fixed.getShort(14));
    }

    /**
     * Reads and validates the whole snapshot table of {@code header}: at most 65536 entries and
     * 64 MiB, inside the file, each entry's L1 table aligned and within QEMU's L1 limit.
     */
    static List<Qcow2Snapshot> readTable(Storage storage, Qcow2Header header, long fileSize) throws IOException {
        String resource = storage.name();
        int n = header.nbSnapshots();
        List<Qcow2Snapshot> out = new ArrayList<>(Math.min(n, 1024));
        long offset = header.snapshotsOffset();
        long tableStart = offset;
        ByteBuffer fixed = ByteBuffer.allocate(FIXED).order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < n; i++) {
            if (offset - tableStart + FIXED > Qcow2Header.MAX_SNAPSHOTS_BYTES) {
                throw new ImageLimitException(resource, header.snapshotsOffset(), "Snapshot table too large");
            }
            if (offset + FIXED > fileSize) {
                throw new CorruptImageException(resource, offset, "snapshot table entry " + i
                        + " extends past the end of the file");
            }
            storage.read(fixed.clear(), offset);
            long extra = u32(fixed.getInt(36));
            if (extra > MAX_EXTRA) {
                throw new CorruptImageException(resource, offset + 36, "Too much extra metadata in snapshot "
                        + "table entry (" + extra + " bytes)");
            }
            int total = (int) entryLength(fixed);
            int padded = (total + 7) & ~7;
            if (offset - tableStart + padded > Qcow2Header.MAX_SNAPSHOTS_BYTES) {
                throw new ImageLimitException(resource, header.snapshotsOffset(), "Snapshot table too large");
            }
            if (offset + total > fileSize) {
                throw new CorruptImageException(resource, offset, "snapshot table entry " + i
                        + " extends past the end of the file");
            }
            ByteBuffer entry = ByteBuffer.allocate(total);
            storage.read(entry, offset);
            Qcow2Snapshot s = parse(entry.clear(), resource, offset);
            if (u32(s.l1Size()) > Qcow2Header.MAX_L1_BYTES / 8) {
                throw new ImageLimitException(resource, offset + 8, "Snapshot L1 table too large");
            }
            Qcow2Header.validateTable(resource, offset, "Snapshot L1 table", s.l1TableOffset(), s.l1Size() * 8L,
                    header.clusterSize(), fileSize);
            out.add(s);
            offset = Qcow2Checks.add(resource, offset, offset, padded, "snapshot table offset");
        }
        return out;
    }

    /**
     * The snapshot table as {@code qemu-img check} reads it (QEMU 7.2's qcow2_check_read_snapshot_table).
     *
     * @param entries the entries read (empty when the table could not be read)
     * @param size the table's length as QEMU counts it: up to the end of the last entry's name, unpadded
     * @param incomplete indexes of version 3 entries without the disk size in their extra data
     * @param extraDropped entries whose too large extra data {@code repair} drops
     * @param discarded entries past QEMU's limit of 65536 that {@code repair} drops
     * @param failure why the table could not be read (qemu-img's strerror text; the check fails), or null
     */
    record CheckRead(List<Qcow2Snapshot> entries, long size, List<Integer> incomplete, int extraDropped,
            long discarded, String failure) {
        /** The corruptions the table itself counts. */
        long corruptions() {
            return incomplete.size() + extraDropped + discarded;
        }
    }

    /**
     * Reads the snapshot table as QEMU's check does, never throwing for damage: bytes past the end of the
     * file read as zero; too many entries, an unaligned table and (unless {@code repair}) too much extra
     * data in an entry make the check fail; entries of a version 3 image without a disk size are counted
     * as incomplete. Messages (as qemu-img's) go to {@code messages}. Memory is bounded by QEMU's limits
     * (65536 entries, 64 MiB).
     */
    static CheckRead readForCheck(Storage storage, Qcow2Header header, boolean repair, Consumer<String> messages)
            throws IOException {
        long n = u32(header.nbSnapshots());
        long start = header.snapshotsOffset();
        long discarded = 0;
        if (n > Qcow2Header.MAX_SNAPSHOTS) {
            if (!repair) {
                messages.accept("ERROR snapshot table too large");
                messages.accept("You can force-remove all " + (n - Qcow2Header.MAX_SNAPSHOTS)
                        + " overhanging snapshots with qemu-img check -r all");
                return failed("File too large");
            }
            discarded = n - Qcow2Header.MAX_SNAPSHOTS;
            messages.accept("Discarding " + discarded + " overhanging snapshots");
            n = Qcow2Header.MAX_SNAPSHOTS;
        }
        if (start < 0 || Long.MAX_VALUE - n * FIXED < start || (start & (header.clusterSize() - 1)) != 0) {
            messages.accept("ERROR snapshot table offset invalid");
            return failed("Invalid argument");
        }
        List<Qcow2Snapshot> out = new ArrayList<>((int) Math.min(n, 1024));
        List<Integer> incomplete = new ArrayList<>();
        int extraDropped = 0;
        long offset = start;
        ByteBuffer fixed = ByteBuffer.allocate(FIXED).order(ByteOrder.BIG_ENDIAN);
        ByteBuffer known = ByteBuffer.allocate(24).order(ByteOrder.BIG_ENDIAN);
        long end = start;
        for (int i = 0; i < n; i++) {
            offset = (end + 7) & ~7L;
            if (offset < 0 || offset - start > Qcow2Header.MAX_SNAPSHOTS_BYTES) {
                if (!overhanging(repair, n - i, messages)) {
                    return failed("File too large");
                }
                discarded += n - i;
                break;
            }
            long entryOffset = offset;
            storage.read(fixed.clear(), offset);
            int idLen = Short.toUnsignedInt(fixed.getShort(12));
            int nameLen = Short.toUnsignedInt(fixed.getShort(14));
            long extra = u32(fixed.getInt(36));
            if (extra > MAX_EXTRA) {
                if (!repair) {
                    messages.accept("ERROR failed to read the snapshot table: Too much extra metadata in snapshot "
                            + "table entry " + i);
                    messages.accept("You can force-remove this extra metadata with qemu-img check -r all");
                    return failed("File too large");
                }
                messages.accept("Discarding too much extra metadata in snapshot table entry " + i + " (" + extra
                        + " > " + MAX_EXTRA + ")");
                extraDropped++;
            }
            offset += FIXED;
            storage.read(known.clear().limit((int) Math.min(24, extra)), offset);
            offset += extra;
            if (offset < 0 || offset - start > Qcow2Header.MAX_SNAPSHOTS_BYTES) {
                if (!overhanging(repair, n - i, messages)) {
                    return failed("File too large");
                }
                discarded += n - i;
                break;
            }
            long vmState = u32(fixed.getInt(32));
            long diskSize = -1;
            long icount = -1;
            if (extra >= 8) {
                vmState = known.getLong(0);
            }
            if (extra >= 16) {
                diskSize = known.getLong(8);
            } else if (header.version() >= 3) {
                incomplete.add(i);
            }
            if (extra >= 24) {
                icount = known.getLong(16);
            }
            byte[] id = new byte[idLen];
            storage.read(ByteBuffer.wrap(id), offset);
            offset += idLen;
            byte[] name = new byte[nameLen];
            storage.read(ByteBuffer.wrap(name), offset);
            offset += nameLen;
            if (offset - start > Qcow2Header.MAX_SNAPSHOTS_BYTES) {
                if (!overhanging(repair, n - i, messages)) {
                    return failed("File too large");
                }
                discarded += n - i;
                break;
            }
            end = offset;
            out.add(new Qcow2Snapshot(fixed.getLong(0), fixed.getInt(8), cString(id), cString(name),
                    u32(fixed.getInt(16)), u32(fixed.getInt(20)),
                    fixed.getLong(24), vmState, diskSize, icount, entryOffset));
        }
        for (int i : incomplete) {
            messages.accept((repair ? "Repairing" : "ERROR") + " snapshot table entry " + i + " is incomplete");
        }
        return new CheckRead(out, end - start, incomplete, extraDropped, discarded, null);
    }

    /**
     * An entry ends past QEMU's 64 MiB: without {@code repair} the check fails (false); with it, that entry and
     * the {@code left - 1} after it are dropped (true), as qcow2_do_read_snapshots does.
     */
    private static boolean overhanging(boolean repair, long left, Consumer<String> messages) {
        if (!repair) {
            messages.accept("ERROR failed to read the snapshot table: Snapshot table is too big");
            messages.accept("You can force-remove all " + left + " overhanging snapshots with qemu-img check -r all");
            return false;
        }
        messages.accept("Discarding " + left + " overhanging snapshots (snapshot table is too big)");
        return true;
    }

    /** The bytes up to the first NUL, as QEMU keeps ids and names (C strings): a table cut short reads zeros. */
    private static String cString(byte[] b) {
        int n = 0;
        while (n < b.length && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }

    private static CheckRead failed(String why) {
        return new CheckRead(List.of(), 0, List.of(), 0, 0, why);
    }

    /** The index of the snapshot with id {@code idOrName}, else the first one with that name (QEMU's find_snapshot_by_id_or_name). */
    static int find(List<Qcow2Snapshot> list, String idOrName, String resource) throws NoSuchSnapshotException {
        for (int i = 0; i < list.size(); i++) {
            if (list.get(i).id().equals(idOrName)) {
                return i;
            }
        }
        for (int i = 0; i < list.size(); i++) {
            if (list.get(i).name().equals(idOrName)) {
                return i;
            }
        }
        throw new NoSuchSnapshotException(resource, idOrName);
    }

    /** QEMU's find_new_snapshot_id: one more than the largest id read as a number (strtoul; not a number is 0). */
    static String nextSnapshotId(List<Qcow2Snapshot> list) {
        long max = 0;
        for (Qcow2Snapshot s : list) {
            long v = strtoul(s.id());
            if (Long.compareUnsigned(v, max) > 0) {
                max = v;
            }
        }
        return Long.toUnsignedString(max + 1);
    }

    /** C's strtoul(s, NULL, 10): leading blanks, an optional sign, digits; saturates; no digits is 0. */
    static long strtoul(String s) {
        int i = 0;
        while (i < s.length() && (s.charAt(i) == ' ' || s.charAt(i) >= '\t' && s.charAt(i) <= '\r')) {
            i++;
        }
        boolean negative = false;
        if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
            negative = s.charAt(i) == '-';
            i++;
        }
        long v = 0;
        boolean overflow = false;
        for (; i < s.length() && s.charAt(i) >= '0' && s.charAt(i) <= '9'; i++) {
            int d = s.charAt(i) - '0';
            if (Long.compareUnsigned(v, Long.divideUnsigned(-1L - d, 10)) > 0) {
                overflow = true;
            }
            v = v * 10 + d;
        }
        if (overflow) {
            return -1L;
        }
        return negative ? -v : v;
    }

    /** Encodes one snapshot table entry as QEMU 7.2 writes them: 24 bytes of extra data (VM state 0, disk size, icount 0). */
    static byte[] encode(long l1Off, int l1Size, String id, byte[] name, Instant date, long diskSize) {
        byte[] idBytes = id.getBytes(StandardCharsets.UTF_8);
        int extra = 24;
        ByteBuffer b = ByteBuffer.allocate(Qcow2Snapshot.FIXED + extra + idBytes.length + name.length)
                .order(ByteOrder.BIG_ENDIAN);
        b.putLong(0, l1Off).putInt(8, l1Size).putShort(12, (short) idBytes.length).putShort(14, (short) name.length)
                // qemu-img takes the time in microseconds (g_get_real_time)
                .putInt(16, (int) date.getEpochSecond()).putInt(20, date.getNano() / 1000 * 1000)
                .putLong(24, 0).putInt(32, 0).putInt(36, extra)
                .putLong(40, 0).putLong(48, diskSize).putLong(56, 0)
                .put(Qcow2Snapshot.FIXED + extra, idBytes).put(Qcow2Snapshot.FIXED + extra + idBytes.length, name);
        return b.array();
    }

    /** The entries of snapshot table {@code list} as they are in the file (unknown extra data is kept). */
    static List<byte[]> rawEntries(Storage storage, List<Qcow2Snapshot> list) throws IOException {
        List<byte[]> out = new ArrayList<>(list.size() + 1);
        ByteBuffer fixed = ByteBuffer.allocate(Qcow2Snapshot.FIXED).order(ByteOrder.BIG_ENDIAN);
        for (Qcow2Snapshot s : list) {
            storage.read(fixed.clear(), s.entryOffset());
            ByteBuffer e = ByteBuffer.allocate((int) Qcow2Snapshot.entryLength(fixed));
            storage.read(e, s.entryOffset());
            out.add(e.array());
        }
        return out;
    }

    static long paddedLength(List<byte[]> entries) {
        long n = 0;
        for (byte[] e : entries) {
            n += (e.length + 7) & ~7;
        }
        return n;
    }
}
