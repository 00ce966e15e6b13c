package imago.cow.internal;

import imago.api.Image;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;

/** Shared helpers: unique memory names, random content, opening through {@link Imago#opener()}. */
final class CowTestSupport {
    private static final AtomicInteger NAMES = new AtomicInteger();

    private CowTestSupport() {
    }

    static String name(String prefix) {
        return prefix + "-" + NAMES.incrementAndGet();
    }

    static byte[] random(SplittableRandom r, int n) {
        byte[] b = new byte[n];
        r.nextBytes(b);
        return b;
    }

    static Image open(String name, boolean writable) throws IOException {
        return Imago.opener().location(StorageLocation.memory(name)).writable(writable).open();
    }

    static byte[] readAll(Image image) throws IOException {
        ByteBuffer all = ByteBuffer.allocate(Math.toIntExact(image.size()));
        image.read(all, 0);
        return all.array();
    }

    /** A raw backing image in memory. */
    static void backing(String name, byte[] content) {
        MemoryStorage.of(name, content).close();
    }

    /** A cow image in memory; the expected guest content given the backing content. */
    static byte[] cow(String name, CowImages.Spec spec, BitSet present, byte[] data, byte[] backing) {
        MemoryStorage.of(name, CowImages.image(spec, present, data)).close();
        return expected(spec, present, data, backing);
    }

    static byte[] expected(CowImages.Spec spec, BitSet present, byte[] data, byte[] backing) {
        byte[] out = new byte[Math.toIntExact(spec.size())];
        System.arraycopy(backing, 0, out, 0, Math.min(backing.length, out.length));
        for (int n = present.nextSetBit(0); n >= 0; n = present.nextSetBit(n + 1)) {
            int from = n * spec.sectorSize();
            int len = Math.min(spec.sectorSize(), out.length - from);
            System.arraycopy(data, from, out, from, len);
        }
        return out;
    }

    static BitSet randomBits(SplittableRandom r, long bits) {
        BitSet b = new BitSet();
        int i = 0;
        while (i < bits) {
            int run = 1 + r.nextInt(70);
            if (r.nextBoolean()) {
                b.set(i, (int) Math.min(bits, i + run));
            }
            i += run;
        }
        return b;
    }
}
