package imago.cloop.internal;

import imago.api.CorruptImageException;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.spi.BackingReader;
import imago.api.spi.FormatInstance;
import imago.api.spi.Inflate;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * One open cloop image: every block is a {@link Mapping.Special} that {@link #readSpecial} inflates; the block last
 * inflated is kept, which serves sequential reads of less than a block. Read-only; thread-safe.
 */
final class CloopInstance implements FormatInstance {
    private static final String KIND = "compressed";

    private final Storage storage;
    private final CloopTable table;
    private final long fileSize;
    private final long size;
    /** The block last inflated. */
    private volatile Block last;

    private record Block(int index, byte[] bytes) {
    }

    private CloopInstance(Storage storage, CloopTable table, long fileSize) {
        this.storage = storage;
        this.table = table;
        this.fileSize = fileSize;
        this.size = (long) table.blocks() * table.blockSize();
    }

    static CloopInstance open(Storage storage) throws IOException {
        CloopTable table = CloopTable.read(storage);
        return new CloopInstance(storage, table, storage.size());
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public Mapping mapping(long offset, long maxLength) {
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        long blockEnd = (offset / table.blockSize() + 1) * table.blockSize();
        return new Mapping.Special(offset, Math.min(maxLength, blockEnd - offset), KIND);
    }

    @Override
    public void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) throws IOException {
        while (dst.hasRemaining()) {
            int index = (int) (offset / table.blockSize());
            int at = (int) (offset % table.blockSize());
            byte[] block = block(index);
            int n = Math.min(dst.remaining(), block.length - at);
            dst.put(block, at, n);
            offset += n;
        }
    }

    private byte[] block(int index) throws IOException {
        Block cached = last;
        if (cached != null && cached.index() == index) {
            return cached.bytes();
        }
        long from = table.offsets()[index];
        long to = table.offsets()[index + 1];
        if (from < 0 || to > fileSize) {
            throw new CorruptImageException(storage.name(), CloopTable.TABLE + 8L * index, "block " + index
                    + " lies past the end of the file (" + fileSize + " bytes)");
        }
        ByteBuffer compressed = ByteBuffer.allocate((int) (to - from));
        storage.read(compressed, from);
        byte[] out = new byte[table.blockSize()];
        Inflate.zlibExactly(compressed.flip(), out, storage.name(), from, "block " + index);
        last = new Block(index, out);
        return out;
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        throw new ReadOnlyImageException(storage.name(), "the cloop format can only be read");
    }

    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        throw new ReadOnlyImageException(storage.name(), "the cloop format can only be read");
    }

    @Override
    public void flush() {
    }

    @Override
    public void sync() {
    }

    @Override
    public void close() {
    }

    @Override
    public String toString() {
        return "CloopInstance[" + storage.name() + ", " + table.blocks() + " blocks of " + table.blockSize() + "]";
    }
}
