package imago.vmdk.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/**
 * Crash safety and concurrency of sparse writes: grains reach stable media before any grain table points at them,
 * and a new table before the directory does; concurrent writes into the same new grains lose nothing.
 */
class VmdkWriteOrderTest {
    private static final int GRAIN = 64 << 10;

    /** What the storage saw: a write ({@code offset}, {@code length}) or a sync ({@code length} -1). */
    record Event(long offset, long length) {
        boolean sync() {
            return length < 0;
        }
    }

    /** A storage that logs writes and syncs. */
    static final class Recording implements Storage {
        final Storage inner;
        final List<Event> log = new ArrayList<>();

        Recording(Storage inner) {
            this.inner = inner;
        }

        @Override public String name() {
            return inner.name();
        }

        @Override public StorageLocation location() {
            return inner.location();
        }

        @Override public long size() throws IOException {
            return inner.size();
        }

        @Override public boolean readOnly() {
            return inner.readOnly();
        }

        @Override public void read(ByteBuffer dst, long offset) throws IOException {
            inner.read(dst, offset);
        }

        @Override public synchronized void write(ByteBuffer src, long offset) throws IOException {
            log.add(new Event(offset, src.remaining()));
            inner.write(src, offset);
        }

        @Override public void flush() throws IOException {
            inner.flush();
        }

        @Override public synchronized void sync() throws IOException {
            log.add(new Event(0, -1));
            inner.sync();
        }

        @Override public void resize(long size, Preallocation preallocation) throws IOException {
            inner.resize(size, preallocation);
        }

        @Override public void close() throws IOException {
            inner.close();
        }
    }

    private static Image open(Recording storage) throws IOException {
        VmdkFormatDriver driver = new VmdkFormatDriver(() -> 0x1234_5678L);
        var layer = driver.open(storage, OpenContext.of(true));
        return LayeredImage.builder("vmdk", layer, storage).writable(true).build();
    }

    /**
     * An allocating write, then a flush: the CID (synced), the grain, a sync, then the grain table and its redundant
     * copy, then a sync. A second write to the same grain goes in place and needs no metadata.
     */
    @Test
    void grainsAreSyncedBeforeTablesPointAtThem() throws IOException {
        String name = "order-" + System.nanoTime() + ".vmdk";
        Imago.create(StorageLocation.memory(name), "vmdk", CreateOptions.ofSize(4L << 20));
        try (Recording s = new Recording(MemoryStorage.open(name, true)); Image image = open(s)) {
            VmdkSparseHeader h = header(s);
            long gt = (h.gdOffset() + 1) * 512;
            long rgt = (h.rgdOffset() + 1) * 512;
            long grains = h.overhead() * 512;
            image.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), GRAIN + 5);
            image.flush();
            List<Event> log = s.log;
            // the CID: a few bytes in the descriptor, synced before the caller's bytes are written (only the copy
            // of the rest of the new grain, which nothing points at yet, may come first)
            int cid = indexOf(log, e -> !e.sync() && e.offset() > 512 && e.offset() < 21 * 512 && e.length() < 9);
            int data = indexOf(log, e -> e.equals(new Event(grains + 5, 3)));
            assertTrue(cid >= 0 && data > cid + 1 && log.get(cid + 1).sync(), log.toString());
            int firstTable = indexOf(log, e -> !e.sync() && (e.offset() == gt || e.offset() == rgt));
            int lastData = lastIndexOf(log, e -> !e.sync() && e.offset() >= grains);
            assertTrue(lastData > 1 && firstTable > lastData, log.toString());
            assertTrue(log.subList(lastData, firstTable).stream().anyMatch(Event::sync), "a sync between the grain "
                    + "and its table: " + log);
            assertEquals(new Event(gt, 2048), log.get(firstTable));
            assertEquals(new Event(rgt, 2048), log.get(firstTable + 1));
            assertTrue(log.getLast().sync(), log.toString());
            int before = log.size();
            image.write(ByteBuffer.wrap(new byte[] {4}), GRAIN + 7);
            image.flush();
            assertTrue(log.subList(before, log.size()).stream().noneMatch(e -> !e.sync() && e.offset() < grains),
                    "no metadata for a write in place: " + log.subList(before, log.size()));
        } finally {
            MemoryStorage.delete(name);
        }
    }

    /** A grain in a table that does not exist yet: grain, sync, new tables, sync, then the directory entries. */
    @Test
    void newTablesAreSyncedBeforeTheDirectoryPointsAtThem() throws IOException {
        String name = "order-gd-" + System.nanoTime() + ".vmdk";
        Imago.create(StorageLocation.memory(name), "vmdk", CreateOptions.ofSize(64L << 20));
        try (Recording s = new Recording(MemoryStorage.open(name, true))) {
            VmdkSparseHeader h = header(s);
            // remove grain table 1 from both directories, as VMware leaves tables it has not needed yet
            ByteBuffer zero = ByteBuffer.allocate(4);
            s.inner.write(zero.clear(), h.gdOffset() * 512 + 4);
            s.inner.write(zero.clear(), h.rgdOffset() * 512 + 4);
            long gdEntry = h.gdOffset() * 512 + 4;
            long rgdEntry = h.rgdOffset() * 512 + 4;
            try (Image image = open(s)) {
                image.write(ByteBuffer.wrap(new byte[] {9}), 32L << 20);
                image.flush();
                List<Event> log = s.log;
                int dir = indexOf(log, e -> e.offset() == gdEntry && e.length() == 4);
                int rdir = indexOf(log, e -> e.offset() == rgdEntry && e.length() == 4);
                int tables = indexOf(log, e -> !e.sync() && e.length() == 2048);
                assertTrue(tables > 0 && dir > tables && rdir > tables, log.toString());
                assertTrue(log.subList(tables, dir).stream().anyMatch(Event::sync), log.toString());
                ByteBuffer one = ByteBuffer.allocate(1);
                image.read(one, 32L << 20);
                assertEquals(9, one.get(0));
            }
            try (Image reopened = Imago.opener().location(StorageLocation.memory(name)).open()) {
                ByteBuffer one = ByteBuffer.allocate(1);
                reopened.read(one, 32L << 20);
                assertEquals(9, one.get(0));
            }
        } finally {
            MemoryStorage.delete(name);
        }
    }

    /** Eight threads write interleaved sectors of the same new grains at once: every sector keeps its writer's. */
    @Test
    void concurrentWritesIntoTheSameNewGrains() throws Exception {
        String name = "concurrent-" + System.nanoTime() + ".vmdk";
        Imago.create(StorageLocation.memory(name), "vmdk", CreateOptions.ofSize(2L << 20));
        int threads = 8;
        try (Image image = Imago.opener().location(StorageLocation.memory(name)).writable(true).open();
                ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int me = t;
                done.add(pool.submit(() -> {
                    byte[] sector = new byte[512];
                    Arrays.fill(sector, (byte) (me + 1));
                    for (long s = me; s < (2L << 20) / 512; s += threads) {
                        image.write(ByteBuffer.wrap(sector), s * 512);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            ByteBuffer all = ByteBuffer.allocate(2 << 20);
            image.read(all, 0);
            byte[] expected = new byte[2 << 20];
            for (int s = 0; s < expected.length / 512; s++) {
                Arrays.fill(expected, s * 512, s * 512 + 512, (byte) (s % threads + 1));
            }
            assertArrayEquals(expected, all.array());
        } finally {
            MemoryStorage.delete(name);
        }
    }

    private static VmdkSparseHeader header(Storage s) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(512);
        s.read(b, 0);
        return VmdkSparseHeader.parse(b.flip());
    }

    private static int indexOf(List<Event> log, Predicate<Event> p) {
        for (int i = 0; i < log.size(); i++) {
            if (p.test(log.get(i))) {
                return i;
            }
        }
        return -1;
    }

    private static int lastIndexOf(List<Event> log, Predicate<Event> p) {
        for (int i = log.size() - 1; i >= 0; i--) {
            if (p.test(log.get(i))) {
                return i;
            }
        }
        return -1;
    }
}
