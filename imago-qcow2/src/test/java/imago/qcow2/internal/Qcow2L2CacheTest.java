package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class Qcow2L2CacheTest {

    @Test
    void defaultSizeCoversEightGibOrTheImage() {
        Qcow2Header h64k = header(16, false);
        assertEquals(16, Qcow2Opening.cacheTables(Map.of(), h64k, 1L << 40, "x"));
        assertEquals(4, Qcow2Opening.cacheTables(Map.of(), h64k, 1L << 20, "x"));
        Qcow2Header h512 = header(9, false);
        // 8 GiB of 512-byte clusters would need 128 MiB: capped at 32 MiB
        assertEquals((32 << 20) / 512, Qcow2Opening.cacheTables(Map.of(), h512, 1L << 40, "x"));
        assertEquals(32, Qcow2Opening.cacheTables(Map.of(), header(16, true), 1L << 40, "x"));
        assertEquals(3, Qcow2Opening.cacheTables(Map.of("l2-cache-size", "131073"), h64k, 1L << 40, "x"));
        assertEquals(2, Qcow2Opening.cacheTables(Map.of("cache-size", "131072"), h64k, 1L << 40, "x"));
        assertEquals(1, Qcow2Opening.cacheTables(Map.of("l2-cache-size", "0"), h64k, 1L << 40, "x"));
        assertThrows(IllegalArgumentException.class,
                () -> Qcow2Opening.cacheTables(Map.of("l2-cache-size", "lots"), h64k, 1L << 40, "x"));
    }

    private static Qcow2Header header(int clusterBits, boolean extendedL2) {
        return new Qcow2Header(3, 0, 0, clusterBits, 0, 0, 0, 0, 0, 0, 0, 0,
                extendedL2 ? Qcow2Header.INCOMPAT_EXTL2 : 0, 0, 0, 4, 112, 0, List.of(), java.util.Optional.empty(),
                java.util.Optional.empty(), java.util.Optional.empty());
    }

    @Test
    void hitsDoNotReload() throws IOException {
        Qcow2L2Cache cache = new Qcow2L2Cache(4);
        AtomicInteger loads = new AtomicInteger();
        long[] first = cache.get(4096, off -> {
            loads.incrementAndGet();
            return new long[] {off};
        });
        assertSame(first, cache.get(4096, off -> {
            throw new AssertionError("reloaded");
        }));
        assertEquals(1, loads.get());
    }

    @Test
    void staysWithinItsCapacity() throws IOException {
        Qcow2L2Cache cache = new Qcow2L2Cache(8);
        for (long i = 0; i < 1000; i++) {
            cache.get(i * 512, off -> new long[] {off});
            assertTrue(cache.size() <= 8, () -> "size " + cache.size());
        }
    }

    @Test
    void aFailedLoadIsNotCachedAndEachCallerGetsItsOwnError() throws IOException {
        Qcow2L2Cache cache = new Qcow2L2Cache(2);
        assertThrows(CorruptImageException.class, () -> cache.get(0, off -> {
            throw new CorruptImageException("x", off, "bad");
        }));
        assertEquals(1, cache.get(0, off -> new long[] {1})[0]);
    }

    @Test
    void concurrentMissesLoadATableOnce() throws Exception {
        Qcow2L2Cache cache = new Qcow2L2Cache(64);
        Map<Long, AtomicInteger> loads = new ConcurrentHashMap<>();
        CountDownLatch start = new CountDownLatch(1);
        try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < 32; t++) {
                futures.add(pool.submit(() -> {
                    start.await();
                    for (long i = 0; i < 32; i++) {
                        long[] table = cache.get(i, off -> {
                            loads.computeIfAbsent(off, k -> new AtomicInteger()).incrementAndGet();
                            try {
                                Thread.sleep(1);
                            } catch (InterruptedException e) {
                                throw new IOException(e);
                            }
                            return new long[] {off};
                        });
                        assertEquals(i, table[0]);
                    }
                    return null;
                }));
            }
            start.countDown();
            for (Future<?> f : futures) {
                f.get();
            }
        }
        loads.forEach((k, v) -> assertEquals(1, v.get(), "table " + k + " loaded " + v + " times"));
    }
}
