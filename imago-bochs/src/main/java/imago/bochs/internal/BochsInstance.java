package imago.bochs.internal;

import imago.api.CorruptImageException;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.spi.BackingReader;
import imago.api.spi.FormatInstance;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.BitSet;

/**
 * One open bochs image: the catalog in memory, each block's bitmap read when a mapping needs it (the last one kept,
 * which serves sequential reads). Read-only; thread-safe.
 */
final class BochsInstance implements FormatInstance {
    private final Storage storage;
    private final BochsHeader header;
    private final int[] catalog;
    private final long fileSize;
    private final int sectorsPerExtent;
    /** The bitmap last read, of one extent: sequential reads ask for it again and again. */
    private volatile ExtentBitmap last;

    private record ExtentBitmap(int extent, BitSet written) {
    }

    private BochsInstance(Storage storage, BochsHeader header, int[] catalog, long fileSize) {
        this.storage = storage;
        this.header = header;
        this.catalog = catalog;
        this.fileSize = fileSize;
        this.sectorsPerExtent = header.extentBytes() / BochsHeader.SECTOR;
    }

    /** Reads and checks the header and loads the catalog (at most 4 MiB). */
    static BochsInstance open(Storage storage) throws IOException {
        long fileSize = storage.size();
        ByteBuffer head = ByteBuffer.allocate(BochsHeader.SECTOR);
        storage.read(head, 0);
        BochsHeader header = BochsHeader.parse(storage.name(), head.flip(), fileSize);
        ByteBuffer table = ByteBuffer.allocate(4 * header.catalogEntries()).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(table, header.catalogOffset());
        int[] catalog = new int[header.catalogEntries()];
        table.flip().asIntBuffer().get(catalog);
        return new BochsInstance(storage, header, catalog, fileSize);
    }

    @Override
    public long size() {
        return header.size();
    }

    /**
     * {@inheritDoc} Written sectors are data in the file (a run of them is contiguous there); sectors never written
     * are unallocated and read as zeroes.
     */
    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        if (offset >= header.size()) {
            return new Mapping.EndOfImage(offset);
        }
        int extent = (int) (offset / header.extentBytes());
        long extentStart = (long) extent * header.extentBytes();
        long limit = Math.min(Math.min(maxLength, header.size() - offset), extentStart + header.extentBytes() - offset);
        long entry = Integer.toUnsignedLong(catalog[extent]);
        if (entry == BochsHeader.UNALLOCATED) {
            return new Mapping.Unallocated(offset, limit);
        }
        long block = header.dataOffset() + entry * header.blockBytes();
        BitSet written = bitmap(extent, block);
        int sector = (int) ((offset - extentStart) / BochsHeader.SECTOR);
        boolean data = written.get(sector);
        int runEnd = data ? written.nextClearBit(sector) : written.nextSetBit(sector);
        if (runEnd < 0 || runEnd > sectorsPerExtent) {
            runEnd = sectorsPerExtent;
        }
        long length = Math.min(limit, extentStart + (long) runEnd * BochsHeader.SECTOR - offset);
        if (!data) {
            return new Mapping.Unallocated(offset, length);
        }
        long host = block + header.bitmapSpan() + (offset - extentStart);
        if (host + length > fileSize) {
            throw new CorruptImageException(storage.name(), host, "sectors of extent " + extent
                    + " lie past the end of the file (" + fileSize + " bytes)");
        }
        return new Mapping.Data(offset, length, storage, host);
    }

    private BitSet bitmap(int extent, long block) throws IOException {
        ExtentBitmap cached = last;
        if (cached != null && cached.extent() == extent) {
            return cached.written();
        }
        int bytes = Math.ceilDiv(sectorsPerExtent, 8);
        if (block + bytes > fileSize) {
            throw new CorruptImageException(storage.name(), block, "the bitmap of extent " + extent
                    + " lies past the end of the file (" + fileSize + " bytes)");
        }
        ByteBuffer b = ByteBuffer.allocate(bytes);
        storage.read(b, block);
        BitSet written = BitSet.valueOf(b.flip());
        last = new ExtentBitmap(extent, written);
        return written;
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        throw new ReadOnlyImageException(storage.name(), "the bochs format can only be read");
    }

    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        throw new ReadOnlyImageException(storage.name(), "the bochs format can only be read");
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
        return "BochsInstance[" + storage.name() + ", size " + header.size() + "]";
    }
}
