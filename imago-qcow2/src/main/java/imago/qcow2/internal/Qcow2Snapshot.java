package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Checks.u32;

import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.SnapshotInfo;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

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

    /**
     * Reads and validates the whole snapshot table of {@code header}: at most 65536 entries and
     * 64 MiB, inside the file, each entry's L1 table aligned and within QEMU's L1 limit.
     */
    static List<Qcow2Snapshot> readTable(Storage storage, Qcow2Header header, long fileSize) throws IOException {
        return readTable(storage, header, fileSize, false);
    }

    /**
     * Reads the snapshot table; {@code lenient} (for checking) leaves each entry's L1 table unvalidated,
     * since the check reports bad ones as corruptions.
     */
    static List<Qcow2Snapshot> readTable(Storage storage, Qcow2Header header, long fileSize, boolean lenient)
            throws IOException {
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
            int total = (int) (FIXED + extra + Short.toUnsignedInt(fixed.getShort(12))
                    + Short.toUnsignedInt(fixed.getShort(14)));
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
            if (lenient) {
                out.add(s);
                offset = Qcow2Checks.add(resource, offset, offset, padded, "snapshot table offset");
                continue;
            }
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
}
