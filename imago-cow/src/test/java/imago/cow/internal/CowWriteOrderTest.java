package imago.cow.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.spi.FormatInstance;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.LongPredicate;
import org.junit.jupiter.api.Test;

/** Data reaches the storage, then a flush, then the bitmap; a failed data write sets no bit. */
class CowWriteOrderTest {

    /** A storage that logs writes and flushes and fails writes where {@code failAt} says. */
    static final class Recording implements Storage {
        final MemoryStorage inner;
        final List<String> log = new ArrayList<>();
        LongPredicate failAt = o -> false;

        Recording(MemoryStorage inner) {
            this.inner = inner;
        }

        @Override
        public String name() {
            return inner.name();
        }

        @Override
        public StorageLocation location() {
            return inner.location();
        }

        @Override
        public long size() throws IOException {
            return inner.size();
        }

        @Override
        public boolean readOnly() {
            return false;
        }

        @Override
        public void read(ByteBuffer dst, long offset) throws IOException {
            inner.read(dst, offset);
        }

        @Override
        public synchronized void write(ByteBuffer src, long offset) throws IOException {
            if (failAt.test(offset)) {
                throw new IOException("injected failure at " + offset);
            }
            log.add("write " + offset + " " + src.remaining());
            inner.write(src, offset);
        }

        @Override
        public synchronized void flush() throws IOException {
            log.add("flush");
            inner.flush();
        }

        @Override
        public synchronized void sync() throws IOException {
            log.add("sync");
            inner.sync();
        }

        @Override
        public void resize(long size, Preallocation preallocation) throws IOException {
            inner.resize(size, preallocation);
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    private static Recording created(long size) throws IOException {
        MemoryStorage m = MemoryStorage.create(CowTestSupport.name("order"));
        new CowFormatDriver().create(m, CreateOptions.ofSize(size));
        return new Recording(m);
    }

    @Test
    void dataThenSyncThenTheBitmap() throws IOException {
        checkOrder(Map.of(), "sync");
        checkOrder(Map.of("cow.sync-data", "on"), "sync");
    }

    @Test
    void dataThenFlushThenTheBitmapWithoutSyncData() throws IOException {
        checkOrder(Map.of("cow.sync-data", "off"), "flush");
    }

    private static void checkOrder(Map<String, String> options, String barrier) throws IOException {
        Recording s = created(1 << 20);
        FormatInstance layer = new CowFormatDriver().open(s, new OpenContext(true, false, options));
        try (Image image = LayeredImage.builder("cow", layer, s).writable(true).build()) {
            image.write(ByteBuffer.allocate(100), 512 * 9 + 10); // sector 9, partial: copy, data, barrier, bitmap
            // data offset: round_up(1056 + 256, 512) = 1536; bitmap 1056..1312 lies in file sector 1024..1536
            assertEquals(List.of("write " + (1536 + 512 * 9) + " 10", "write " + (1536 + 512 * 9 + 110) + " 402",
                    "write " + (1536 + 512 * 9 + 10) + " 100", barrier, "write 1056 256"), s.log);
            s.log.clear();
            image.write(ByteBuffer.allocate(100), 512 * 9 + 200); // present already: data only
            assertEquals(List.of("write " + (1536 + 512 * 9 + 200) + " 100"), s.log);
        }
    }

    @Test
    void aFailedDataWriteSetsNoBit() throws IOException {
        Recording s = created(1 << 20);
        FormatInstance layer = new CowFormatDriver().open(s, OpenContext.of(true));
        s.failAt = o -> o >= 1536 + 512 * 20;
        try (Image image = LayeredImage.builder("cow", layer, s).writable(true).build()) {
            assertThrows(IOException.class, () -> image.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 512 * 20));
            assertTrue(image.mapping(512 * 20, 512) instanceof Mapping.Unallocated);
            s.failAt = o -> false;
            image.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 512 * 30);
        }
        FormatInstance again = new CowFormatDriver().open(MemoryStorage.open(s.inner.location().name(), false), OpenContext.of(false));
        assertTrue(again.mapping(512 * 20, 512) instanceof Mapping.Unallocated);
        assertTrue(again.mapping(512 * 30, 512) instanceof Mapping.Data);
    }

    @Test
    void aFailedBitmapWriteIsRetriedByFlush() throws IOException {
        Recording s = created(1 << 20);
        FormatInstance layer = new CowFormatDriver().open(s, OpenContext.of(true));
        s.failAt = o -> o < 1536;
        Image image = LayeredImage.builder("cow", layer, s).writable(true).build();
        assertThrows(IOException.class, () -> image.write(ByteBuffer.wrap(new byte[512]), 0));
        s.failAt = o -> false;
        image.close(); // flushes: the dirty bitmap sector is written now
        FormatInstance again = new CowFormatDriver().open(MemoryStorage.open(s.inner.location().name(), false), OpenContext.of(false));
        assertTrue(again.mapping(0, 512) instanceof Mapping.Data);
        ByteBuffer b = ByteBuffer.allocate(512);
        MemoryStorage.open(s.inner.location().name(), false).read(b, 1536);
        assertArrayEquals(new byte[512], b.array());
    }
}
