package imago.qcow.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import java.nio.ByteBuffer;

/**
 * The 48-byte qcow (version 1) header (big-endian), validated as QEMU 7.2's {@code qcow_open} validates it, with its
 * messages.
 *
 * @param backingNameOffset byte offset of the backing file name, 0 for none
 * @param backingNameSize bytes of the backing file name
 * @param mtime the backing file's modification time (QEMU writes 0 and never reads it)
 * @param size the virtual size in bytes (QEMU reads it in whole sectors)
 * @param clusterBits log2 of the cluster size, 9 to 16
 * @param l2Bits log2 of the entries per L2 table, 6 to 13
 * @param cryptMethod 0 none, 1 AES (refused)
 * @param l1TableOffset byte offset of the L1 table
 */
record QcowHeader(long backingNameOffset, int backingNameSize, int mtime, long size, int clusterBits, int l2Bits,
        int cryptMethod, long l1TableOffset) {
    /** "QFI\xfb". */
    static final int MAGIC = 0x5146_49FB;
    static final int VERSION = 1;
    static final int LENGTH = 48;
    /** The L1 tables imago loads: 32 MiB of entries, for images up to petabytes. */
    static final long MAX_L1_BYTES = 32L << 20;

    /**
     * Parses and checks the header in the first {@link #LENGTH} bytes of {@code head} (missing bytes read as zero).
     *
     * @throws CorruptImageException if a field is invalid (QEMU's message, the field's offset)
     * @throws UnsupportedFeatureException if the version is not 1 or the image is encrypted
     * @throws ImageLimitException if the L1 table would be larger than imago loads
     */
    static QcowHeader parse(ByteBuffer head, String name) throws CorruptImageException, UnsupportedFeatureException,
            ImageLimitException {
        ByteBuffer b = ByteBuffer.allocate(LENGTH);
        ByteBuffer src = head.duplicate();
        src.limit(Math.min(src.limit(), src.position() + LENGTH));
        b.put(src).clear();
        if (b.getInt(0) != MAGIC) {
            throw new CorruptImageException(name, 0, "Image not in qcow format");
        }
        int version = b.getInt(4);
        if (version != VERSION) {
            throw new UnsupportedFeatureException(name, Feature.FORMAT_VERSION, "qcow version " 
                    + Integer.toUnsignedString(version), "qcow (v1) does not support qcow version "
                    + Integer.toUnsignedString(version) + (version == 2 || version == 3
                            ? " (try the 'qcow2' driver instead)" : ""));
        }
        QcowHeader h = new QcowHeader(b.getLong(8), b.getInt(16), b.getInt(20), b.getLong(24), b.get(32) & 0xFF,
                b.get(33) & 0xFF, b.getInt(36), b.getLong(40));
        if (Long.compareUnsigned(h.size, 1) <= 0) {
            throw new CorruptImageException(name, 24, "Image size is too small (must be at least 2 bytes)");
        }
        if (h.clusterBits < 9 || h.clusterBits > 16) {
            throw new CorruptImageException(name, 32, "Cluster size must be between 512 and 64k");
        }
        if (h.l2Bits < 9 - 3 || h.l2Bits > 16 - 3) {
            throw new CorruptImageException(name, 33, "L2 table size must be between 512 and 64k");
        }
        if (h.cryptMethod == 1) {
            throw new UnsupportedFeatureException(name, Feature.ENCRYPTION, "AES-CBC encrypted qcow images",
                    "AES-CBC encrypted qcow images are not supported (they are never read as plain text)");
        }
        if (h.cryptMethod != 0) {
            throw new CorruptImageException(name, 36, "invalid encryption method in qcow header");
        }
        int shift = h.clusterBits + h.l2Bits;
        if (h.size < 0 || h.size > Long.MAX_VALUE - (1L << shift)) {
            throw new CorruptImageException(name, 24, "Image too large");
        }
        if (h.l1Entries() * 8 > MAX_L1_BYTES) {
            throw new ImageLimitException(name, 24, "an L1 table of " + h.l1Entries() * 8 + " bytes exceeds imago's "
                    + "limit of " + MAX_L1_BYTES);
        }
        return h;
    }

    int clusterSize() {
        return 1 << clusterBits;
    }

    int l2Entries() {
        return 1 << l2Bits;
    }

    /** Entries of the L1 table: one per {@code cluster * l2 entries} bytes of the size. */
    long l1Entries() {
        int shift = clusterBits + l2Bits;
        return (size + (1L << shift) - 1) >>> shift;
    }

    /** The virtual size: whole sectors, as QEMU reads it. */
    long virtualSize() {
        return size & -512L;
    }

    /** The 48 header bytes. */
    ByteBuffer toBytes() {
        ByteBuffer b = ByteBuffer.allocate(LENGTH);
        b.putInt(MAGIC).putInt(VERSION).putLong(backingNameOffset).putInt(backingNameSize).putInt(mtime)
                .putLong(size).put((byte) clusterBits).put((byte) l2Bits).putShort((short) 0).putInt(cryptMethod)
                .putLong(l1TableOffset);
        return b.flip();
    }
}
