package imago.dmg.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BackingReader;
import imago.api.spi.FormatInstance;
import imago.api.spi.Inflate;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * One open dmg image: raw chunks map to their bytes in the file, zero and ignored chunks to zeroes, zlib chunks to
 * {@link Mapping.Special}s that {@link #readSpecial} inflates (the chunk last inflated is kept); sectors no chunk
 * covers, and chunks of types imago does not read, fail when read, as in QEMU. Read-only; thread-safe.
 */
final class DmgInstance implements FormatInstance {
    private static final int SECTOR = 512;
    private static final String COMPRESSED = "compressed";
    private static final String UNREADABLE = "unreadable";

    private final Storage storage;
    private final DmgTable table;
    private final long[] starts;
    private final long fileSize;
    private volatile Inflated last;

    private record Inflated(int chunk, byte[] bytes) {
    }

    private DmgInstance(Storage storage, DmgTable table, long fileSize) {
        this.storage = storage;
        this.table = table;
        this.fileSize = fileSize;
        List<DmgChunk> chunks = table.chunks();
        this.starts = new long[chunks.size()];
        for (int i = 0; i < starts.length; i++) {
            starts[i] = chunks.get(i).firstSector();
        }
    }

    static DmgInstance open(Storage storage) throws IOException {
        return new DmgInstance(storage, DmgTable.read(storage), storage.size());
    }

    @Override
    public long size() {
        return table.sectors() * SECTOR;
    }

    /** The chunk holding {@code sector}, or {@code -1 - (the next chunk's index)} if none does. */
    private int chunkAt(long sector) {
        int i = java.util.Arrays.binarySearch(starts, sector);
        if (i >= 0) {
            return i;
        }
        int before = -i - 2;
        if (before >= 0 && table.chunks().get(before).endSector() > sector) {
            return before;
        }
        return -1 - (before + 1);
    }

    /** {@inheritDoc} QEMU's dmg driver reports no block status: qemu-img map shows the whole image as data. */
    @Override
    public boolean reportsBlockStatus() {
        return false;
    }

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        long size = size();
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        long limit = Math.min(maxLength, size - offset);
        long sector = offset / SECTOR;
        int i = chunkAt(sector);
        if (i < 0) {
            int next = -1 - i;
            long gapEnd = next < starts.length ? starts[next] * SECTOR : size;
            return new Mapping.Special(offset, Math.min(limit, gapEnd - offset), UNREADABLE);
        }
        DmgChunk c = table.chunks().get(i);
        long chunkStart = c.firstSector() * SECTOR;
        long length = Math.min(limit, c.endSector() * SECTOR - offset);
        if (c.zeroes()) {
            return Mapping.Zero.unreserved(offset, length);
        }
        if (c.type() == DmgChunk.RAW) {
            long in = offset - chunkStart;
            if (in >= c.length()) {
                return Mapping.Zero.unreserved(offset, length); // a raw chunk shorter than its sectors
            }
            long n = Math.min(length, c.length() - in);
            if (c.offset() + c.length() > fileSize) {
                throw new CorruptImageException(storage.name(), c.offset(), "raw chunk " + i
                        + " lies past the end of the file (" + fileSize + " bytes)");
            }
            return new Mapping.Data(offset, n, storage, c.offset() + in);
        }
        return new Mapping.Special(offset, length, c.type() == DmgChunk.ZLIB ? COMPRESSED : UNREADABLE);
    }

    @Override
    public void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) throws IOException {
        while (dst.hasRemaining()) {
            long sector = offset / SECTOR;
            int i = chunkAt(sector);
            if (i < 0) {
                throw new CorruptImageException(storage.name(), offset, "no chunk of the image holds sector "
                        + sector);
            }
            DmgChunk c = table.chunks().get(i);
            if (c.type() != DmgChunk.ZLIB) {
                throw new UnsupportedFeatureException(storage.name(), Feature.OTHER, DmgChunk.typeName(c.type())
                        + " chunks", "sector " + sector + " is in a " + DmgChunk.typeName(c.type())
                        + " chunk, which imago does not read");
            }
            byte[] bytes = inflate(i, c);
            int at = (int) (offset - c.firstSector() * SECTOR);
            int n = Math.min(dst.remaining(), bytes.length - at);
            dst.put(bytes, at, n);
            offset += n;
        }
    }

    private byte[] inflate(int index, DmgChunk c) throws IOException {
        Inflated cached = last;
        if (cached != null && cached.chunk() == index) {
            return cached.bytes();
        }
        if (c.offset() + c.length() > fileSize) {
            throw new CorruptImageException(storage.name(), c.offset(), "zlib chunk " + index
                    + " lies past the end of the file (" + fileSize + " bytes)");
        }
        ByteBuffer compressed = ByteBuffer.allocate((int) c.length());
        storage.read(compressed, c.offset());
        byte[] out = new byte[(int) (c.sectorCount() * SECTOR)];
        Inflate.zlibExactly(compressed.flip(), out, storage.name(), c.offset(), "zlib chunk " + index);
        last = new Inflated(index, out);
        return out;
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        throw new ReadOnlyImageException(storage.name(), "the dmg format can only be read");
    }

    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        throw new ReadOnlyImageException(storage.name(), "the dmg format can only be read");
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
        return "DmgInstance[" + storage.name() + ", " + table.chunks().size() + " chunks]";
    }
}
