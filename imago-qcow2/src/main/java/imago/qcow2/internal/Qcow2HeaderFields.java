package imago.qcow2.internal;

import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Writes and reads single fields of a qcow2 header in place, each group that must change together in one write (the
 * header's layout is {@link Qcow2Header}'s; these are the steps that commit metadata changes to it).
 */
final class Qcow2HeaderFields {
    private Qcow2HeaderFields() {
    }


    /** Writes the virtual size (offset 24). */
    static void writeSize(Storage storage, long size) throws IOException {
        storage.write(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, size), 24);
    }

    /** Writes l1_size and l1_table_offset (offsets 36 and 40) in one write. */
    static void writeL1(Storage storage, int l1Size, long l1Offset) throws IOException {
        storage.write(ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN).putInt(0, l1Size).putLong(4, l1Offset), 36);
    }

    /** Writes size, crypt_method, l1_size and l1_table_offset (offsets 24 to 47) in one write. */
    static void writeSizeAndL1(Storage storage, long size, int cryptMethod, int l1Size, long l1Offset)
            throws IOException {
        storage.write(ByteBuffer.allocate(24).order(ByteOrder.BIG_ENDIAN).putLong(0, size).putInt(8, cryptMethod)
                .putInt(12, l1Size).putLong(16, l1Offset), 24);
    }

    /** Writes refcount_table_offset and refcount_table_clusters (offsets 48 and 56) in one write. */
    static void writeRefcountTable(Storage storage, long offset, int clusters) throws IOException {
        storage.write(ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN).putLong(0, offset).putInt(8, clusters), 48);
    }

    /** Writes nb_snapshots and snapshots_offset (offsets 60 and 64) in one write. */
    static void writeSnapshotTable(Storage storage, int count, long offset) throws IOException {
        storage.write(ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN).putInt(0, count).putLong(4, offset), 60);
    }

    /** Writes the incompatible feature bits (offset 72; qcow2 v3). */
    static void writeIncompatible(Storage storage, long features) throws IOException {
        storage.write(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, features), 72);
    }

    /** Reads the incompatible feature bits as they are in the file (offset 72; qcow2 v3). */
    static long readIncompatible(Storage storage) throws IOException {
        ByteBuffer f = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN);
        storage.read(f, 72);
        return f.getLong(0);
    }

    /** Writes the autoclear feature bits (offset 88; qcow2 v3). */
    static void writeAutoclear(Storage storage, long features) throws IOException {
        storage.write(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, features), 88);
    }
}
