package imago.vhdx.internal;

import java.nio.ByteBuffer;
import java.util.UUID;

/**
 * One of the two 4 KiB headers (at 64 KiB and 128 KiB). The valid one with the higher sequence number is current;
 * an update writes the other slot with the sequence number plus one.
 *
 * @param sequence the sequence number
 * @param fileWriteGuid changes on the first write to the file of a session
 * @param dataWriteGuid changes before the first write a user could see
 * @param logGuid non-nil when the log holds entries to replay
 * @param logVersion must be 0
 * @param version must be 1
 * @param logLength the log's length (a multiple of 1 MiB)
 * @param logOffset the log's file offset (a multiple of 1 MiB)
 */
record VhdxHeader(long sequence, UUID fileWriteGuid, UUID dataWriteGuid, UUID logGuid, int logVersion, int version,
        long logLength, long logOffset) {

    /** The header in {@code b} (4 KiB), or null if its signature or checksum is wrong. */
    static VhdxHeader parse(ByteBuffer b) {
        if (b.getInt(0) != VhdxFields.HEADER_SIGNATURE
                || b.getInt(4) != VhdxFields.crc(b, 0, VhdxFields.HEADER_LENGTH, 4)) {
            return null;
        }
        return new VhdxHeader(b.getLong(8), VhdxFields.guid(b, 16), VhdxFields.guid(b, 32), VhdxFields.guid(b, 48),
                b.getShort(64) & 0xFFFF, b.getShort(66) & 0xFFFF, b.getInt(68) & 0xFFFF_FFFFL, b.getLong(72));
    }

    /** The 4 KiB on disk, checksum included. */
    ByteBuffer toBytes() {
        ByteBuffer b = VhdxFields.le(VhdxFields.HEADER_LENGTH);
        b.putInt(0, VhdxFields.HEADER_SIGNATURE);
        b.putLong(8, sequence);
        VhdxFields.putGuid(b, 16, fileWriteGuid);
        VhdxFields.putGuid(b, 32, dataWriteGuid);
        VhdxFields.putGuid(b, 48, logGuid);
        b.putShort(64, (short) logVersion);
        b.putShort(66, (short) version);
        b.putInt(68, (int) logLength);
        b.putLong(72, logOffset);
        b.putInt(4, VhdxFields.crc(b, 0, VhdxFields.HEADER_LENGTH, 4));
        return b;
    }

    VhdxHeader next(UUID fileWrite, UUID dataWrite, UUID log) {
        return new VhdxHeader(sequence + 1, fileWrite, dataWrite, log, logVersion, version, logLength, logOffset);
    }

    boolean hasLog() {
        return !logGuid.equals(VhdxFields.NIL);
    }
}
