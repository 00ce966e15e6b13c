package imago.vhdx.internal;

import imago.api.CorruptImageException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.UUID;

/**
 * The two header slots: which one is current, and updates that write the other slot with the next sequence number
 * and sync it, so that a torn update leaves the previous header current.
 */
final class VhdxHeaders {
    private final Storage storage;
    private VhdxHeader current;
    private int slot;

    private VhdxHeaders(Storage storage, VhdxHeader current, int slot) {
        this.storage = storage;
        this.current = current;
        this.slot = slot;
    }

    /**
     * Reads both headers and picks the valid one with the higher sequence number (two valid headers with the same
     * number must be identical, as Disk2VHD writes them).
     *
     * @throws CorruptImageException if neither is valid, or they disagree under one sequence number
     */
    static VhdxHeaders read(Storage storage) throws IOException {
        String name = storage.name();
        VhdxHeader[] h = new VhdxHeader[2];
        byte[][] raw = new byte[2][];
        for (int i = 0; i < 2; i++) {
            ByteBuffer b = VhdxFields.le(VhdxFields.HEADER_LENGTH);
            storage.read(b, VhdxFields.HEADER_OFFSETS[i]);
            if (!b.hasRemaining()) {
                h[i] = VhdxHeader.parse(b);
                raw[i] = b.array();
            }
        }
        int slot;
        if (h[0] == null && h[1] == null) {
            throw new CorruptImageException(name, VhdxFields.HEADER_OFFSETS[0], "No valid VHDX header found: "
                    + "neither header (at 64 KiB and 128 KiB) has the signature \"head\" and a correct CRC-32C");
        } else if (h[1] == null) {
            slot = 0;
        } else if (h[0] == null) {
            slot = 1;
        } else if (h[0].sequence() != h[1].sequence()) {
            slot = Long.compareUnsigned(h[0].sequence(), h[1].sequence()) > 0 ? 0 : 1;
        } else if (Arrays.equals(raw[0], raw[1])) {
            slot = 0;
        } else {
            throw new CorruptImageException(name, VhdxFields.HEADER_OFFSETS[1] + 8, "both headers have sequence "
                    + "number " + Long.toUnsignedString(h[0].sequence()) + " but differ");
        }
        VhdxHeader c = h[slot];
        long at = VhdxFields.HEADER_OFFSETS[slot];
        if (c.version() != 1) {
            throw new CorruptImageException(name, at + 66, "header version " + c.version() + " is not 1");
        }
        if (c.logVersion() != 0) {
            throw new CorruptImageException(name, at + 64, "log version " + c.logVersion() + " is not 0");
        }
        return new VhdxHeaders(storage, c, slot);
    }

    /** The file offset of the current header. */
    long currentOffset() {
        return VhdxFields.HEADER_OFFSETS[slot];
    }

    VhdxHeader current() {
        return current;
    }

    /** Writes {@code next} (this header's successor) to the other slot and syncs it; it is then current. */
    void update(UUID fileWrite, UUID dataWrite, UUID log) throws IOException {
        VhdxHeader next = current.next(fileWrite, dataWrite, log);
        int other = 1 - slot;
        storage.write(next.toBytes(), VhdxFields.HEADER_OFFSETS[other]);
        storage.sync();
        current = next;
        slot = other;
    }

    /** {@link #update} with only the log GUID changed. */
    void setLog(UUID log) throws IOException {
        update(current.fileWriteGuid(), current.dataWriteGuid(), log);
    }
}
