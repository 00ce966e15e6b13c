package imago.luks.internal;

import imago.luks.crypto.SectorCipher;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The sector ciphers of one key, lent to one request at a time: a {@link SectorCipher} keeps per-call state (its
 * tweak and IV buffers), so threads that encrypt and decrypt at once each borrow their own, and give it back for the
 * next request to reuse instead of expanding the key again.
 */
final class CipherPool {
    private final Supplier<SectorCipher> factory;
    private final ConcurrentLinkedQueue<SectorCipher> idle = new ConcurrentLinkedQueue<>();

    /** @param factory makes another cipher when all are lent out (it captures the key) */
    CipherPool(Supplier<SectorCipher> factory) {
        this.factory = factory;
    }

    /** Encrypts {@code len} bytes (whole units) of {@code buf} in place, the first being unit {@code firstUnit}. */
    void encrypt(byte[] buf, int off, int len, long firstUnit) {
        lend(c -> c.encrypt(buf, off, len, firstUnit));
    }

    /** Decrypts in place, as {@link #encrypt(byte[], int, int, long)} encrypts. */
    void decrypt(byte[] buf, int off, int len, long firstUnit) {
        lend(c -> c.decrypt(buf, off, len, firstUnit));
    }

    /**
     * Encrypts the remaining bytes of {@code src} (whole units) into {@code dst}, the first being unit
     * {@code firstUnit}; neither position moves.
     */
    void encrypt(ByteBuffer src, ByteBuffer dst, long firstUnit) {
        lend(c -> c.encrypt(src, dst, firstUnit));
    }

    /** Decrypts the remaining bytes of {@code buf} (whole units) in place; its position does not move. */
    void decrypt(ByteBuffer buf, long firstUnit) {
        lend(c -> c.decrypt(buf, buf, firstUnit));
    }

    private void lend(Consumer<SectorCipher> work) {
        SectorCipher c = idle.poll();
        if (c == null) {
            c = factory.get();
        }
        try {
            work.accept(c);
        } finally {
            idle.offer(c);
        }
    }

    /** Drops the idle ciphers (their expanded keys), as the key is wiped. */
    void clear() {
        idle.clear();
    }
}
