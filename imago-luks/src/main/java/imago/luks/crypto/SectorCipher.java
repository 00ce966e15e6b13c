package imago.luks.crypto;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Locale;

/**
 * A block cipher ({@link CipherAlgorithm}) over whole encryption units (512-byte sectors for LUKS), in XTS (IEEE
 * P1619, NIST SP 800-38E), CBC, ECB or CTR mode, each unit's IV from an {@link IvGenerator}. AES runs on the JDK's
 * block cipher, one bulk call per batch of units, so the CPU's AES instructions do the work; a batch is small enough
 * (64 KiB) that its bytes and tweaks stay in the CPU's cache between the passes over them. Not thread-safe: callers
 * keep one per thread (a pool).
 */
public abstract sealed class SectorCipher {
    /** The LUKS encryption unit. */
    public static final int SECTOR = 512;
    /** The bytes of one batch: a whole number of units of every size LUKS uses (512 to 4096). */
    private static final int BATCH = 64 * 1024;
    private static final VarHandle LONG_LE = MethodHandles.byteArrayViewVarHandle(long[].class,
            ByteOrder.LITTLE_ENDIAN);

    /** The block cipher modes. */
    public enum Mode {
        /** XEX-based tweaked codebook with ciphertext stealing (no stealing: whole units of 16-byte blocks). */
        XTS,
        /** Cipher block chaining, restarted at every unit. */
        CBC,
        /** Electronic codebook: each block alone, no IV. */
        ECB,
        /** Counter mode: the IV is the first counter block of the unit, counting up big-endian. */
        CTR;

        /** The name in LUKS cipher modes and qemu-img's {@code cipher-mode} ({@code xts}). */
        public String luksName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    final IvGenerator ivgen;
    final int unit;
    final int blockBytes;
    /** Where direct buffers are encrypted, a batch at a time. */
    private byte[] batch;
    /** The IVs of a batch's units. */
    byte[] ivs = new byte[0];

    private SectorCipher(IvGenerator ivgen, int unit, int blockBytes) {
        this.ivgen = ivgen;
        this.unit = unit;
        this.blockBytes = blockBytes;
    }

    /**
     * A cipher of {@code algorithm} in {@code mode} with {@code key} (for XTS the data key then the tweak key, each
     * a key of the cipher; for the other modes one key) over units of {@code unitBytes} (a multiple of 16).
     *
     * @throws IllegalArgumentException if the key length does not fit the cipher and mode, or XTS is asked of a
     *         cipher whose blocks are not 16 bytes
     * @throws UnsupportedOperationException if the cipher needs Bouncy Castle and it is absent
     */
    public static SectorCipher of(CipherAlgorithm algorithm, Mode mode, byte[] key, IvGenerator ivgen,
            int unitBytes) {
        if (unitBytes <= 0 || unitBytes % 16 != 0) {
            throw new IllegalArgumentException("unit of " + unitBytes + " bytes is not a whole number of blocks");
        }
        if (!validKeyLength(algorithm, mode, key.length)) {
            throw new IllegalArgumentException(mode + " of " + algorithm.familyName() + " takes no " + key.length
                    + "-byte key");
        }
        if (ivgen.ivBytes != algorithm.blockBytes()) {
            throw new IllegalArgumentException("IVs of " + ivgen.ivBytes + " bytes for " + algorithm.familyName());
        }
        return switch (mode) {
            case XTS -> new Xts(algorithm, key, ivgen, unitBytes);
            case CBC -> new Cbc(algorithm, key, ivgen, unitBytes);
            case ECB -> new Ecb(algorithm, key, ivgen, unitBytes);
            case CTR -> new Ctr(algorithm, key, ivgen, unitBytes);
        };
    }

    /** Whether {@code mode} works with {@code algorithm} at all: XTS needs 16-byte blocks. */
    public static boolean supports(CipherAlgorithm algorithm, Mode mode) {
        return mode != Mode.XTS || algorithm.blockBytes() == 16;
    }

    /** Whether {@code keyBytes} is a valid key length for {@code algorithm} in {@code mode}. */
    public static boolean validKeyLength(CipherAlgorithm algorithm, Mode mode, int keyBytes) {
        if (!supports(algorithm, mode)) {
            return false;
        }
        return mode == Mode.XTS ? keyBytes % 2 == 0 && algorithm.validKey(keyBytes / 2) : algorithm.validKey(keyBytes);
    }

    /** Encrypts {@code len} bytes (whole units) of {@code buf} in place, the first being unit {@code firstUnit}. */
    public final void encrypt(byte[] buf, int off, int len, long firstUnit) {
        run(buf, off, len, firstUnit, true);
    }

    /** Decrypts {@code len} bytes (whole units) of {@code buf} in place, the first being unit {@code firstUnit}. */
    public final void decrypt(byte[] buf, int off, int len, long firstUnit) {
        run(buf, off, len, firstUnit, false);
    }

    /**
     * Encrypts the remaining bytes of {@code src} (whole units) into {@code dst}, the first being unit
     * {@code firstUnit}; {@code dst} may be {@code src} (in place). Neither buffer's position moves. Direct
     * buffers are encrypted a batch at a time through an array of this cipher's, which stays in the CPU's cache.
     *
     * @throws IllegalArgumentException if the bytes are not whole units or {@code dst} has fewer remaining
     */
    public final void encrypt(ByteBuffer src, ByteBuffer dst, long firstUnit) {
        run(src, dst, firstUnit, true);
    }

    /** Decrypts the remaining bytes of {@code src} into {@code dst}, as the other {@code encrypt} encrypts. */
    public final void decrypt(ByteBuffer src, ByteBuffer dst, long firstUnit) {
        run(src, dst, firstUnit, false);
    }

    private void run(byte[] buf, int off, int len, long firstUnit, boolean encrypt) {
        if (len % unit != 0) {
            throw new IllegalArgumentException(len + " bytes are not whole " + unit + "-byte units");
        }
        for (int done = 0; done < len; done += BATCH) {
            int n = Math.min(BATCH, len - done);
            units(buf, off + done, n, firstUnit + done / unit, encrypt);
        }
    }

    private void run(ByteBuffer src, ByteBuffer dst, long firstUnit, boolean encrypt) {
        int len = src.remaining();
        if (dst.remaining() < len) {
            throw new IllegalArgumentException(len + " bytes do not fit in " + dst.remaining());
        }
        if (src.hasArray() && dst.hasArray() && src.array() == dst.array()
                && src.arrayOffset() + src.position() == dst.arrayOffset() + dst.position()) {
            run(src.array(), src.arrayOffset() + src.position(), len, firstUnit, encrypt);
            return;
        }
        if (len % unit != 0) {
            throw new IllegalArgumentException(len + " bytes are not whole " + unit + "-byte units");
        }
        if (batch == null) {
            batch = new byte[BATCH];
        }
        for (int done = 0; done < len; done += BATCH) {
            int n = Math.min(BATCH, len - done);
            src.get(src.position() + done, batch, 0, n);
            units(batch, 0, n, firstUnit + done / unit, encrypt);
            dst.put(dst.position() + done, batch, 0, n);
        }
    }

    abstract void units(byte[] buf, int off, int len, long firstUnit, boolean encrypt);

    /** Makes room for the IVs of {@code count} units. */
    final void ivsFor(int count) {
        ivs = atLeast(ivs, count * blockBytes);
    }

    /** {@code scratch}, or a new array of {@code length} bytes if it is shorter: scratch grows to the largest batch. */
    private static byte[] atLeast(byte[] scratch, int length) {
        return scratch.length < length ? new byte[length] : scratch;
    }

    private static final class Xts extends SectorCipher {
        private final BlockEngine data;
        private final BlockEngine tweak;
        private byte[] firstTweaks = new byte[0];
        private byte[] work = new byte[0];

        Xts(CipherAlgorithm algorithm, byte[] key, IvGenerator ivgen, int unit) {
            super(ivgen, unit, 16);
            byte[] dataKey = Arrays.copyOfRange(key, 0, key.length / 2);
            byte[] tweakKey = Arrays.copyOfRange(key, key.length / 2, key.length);
            try {
                data = algorithm.engine(dataKey);
                tweak = algorithm.engine(tweakKey);
            } finally {
                Arrays.fill(dataKey, (byte) 0);
                Arrays.fill(tweakKey, (byte) 0);
            }
        }

        /**
         * Per unit u: T0 = E(K2, IV(u)), then T(j+1) = T(j) times x in GF(2^128); block j becomes E(K1, P xor Tj) xor
         * Tj. The first XOR writes into {@code work} and the cipher reads from there back into {@code buf}: the JDK
         * copies what it encrypts in place to a new array first, which would cost an allocation a batch.
         */
        @Override
        void units(byte[] buf, int off, int len, long firstUnit, boolean encrypt) {
            int count = len / unit;
            ivsFor(count);
            firstTweaks = atLeast(firstTweaks, count * 16);
            work = atLeast(work, len);
            ivgen.ivs(firstUnit, count, ivs);
            tweak.encrypt(ivs, 0, count * 16, firstTweaks, 0);
            for (int u = 0; u < count; u++) {
                whiten(buf, off + u * unit, work, u * unit, unit, firstTweaks, u * 16);
            }
            if (encrypt) {
                data.encrypt(work, 0, len, buf, off);
            } else {
                data.decrypt(work, 0, len, buf, off);
            }
            for (int u = 0; u < count; u++) {
                whiten(buf, off + u * unit, buf, off + u * unit, unit, firstTweaks, u * 16);
            }
        }

        /**
         * XORs the {@code unitBytes} bytes of one unit at {@code src[from]} with their tweaks into {@code dst[to]}
         * (which may be the same bytes), the first tweak at {@code tweaks[at]}. Computing the tweaks again for the
         * second XOR costs less than keeping them; a method a unit, so that the JIT compiles it early.
         */
        private static void whiten(byte[] src, int from, byte[] dst, int to, int unitBytes, byte[] tweaks, int at) {
            long lo = (long) LONG_LE.get(tweaks, at);
            long hi = (long) LONG_LE.get(tweaks, at + 8);
            for (int b = 0; b < unitBytes; b += 16) {
                LONG_LE.set(dst, to + b, (long) LONG_LE.get(src, from + b) ^ lo);
                LONG_LE.set(dst, to + b + 8, (long) LONG_LE.get(src, from + b + 8) ^ hi);
                long carry = hi >> 63;
                hi = (hi << 1) | (lo >>> 63);
                lo = (lo << 1) ^ (carry & 0x87);
            }
        }
    }

    private static final class Cbc extends SectorCipher {
        private final BlockEngine engine;

        Cbc(CipherAlgorithm algorithm, byte[] key, IvGenerator ivgen, int unit) {
            super(ivgen, unit, algorithm.blockBytes());
            engine = algorithm.engine(key);
        }

        @Override
        void units(byte[] buf, int off, int len, long firstUnit, boolean encrypt) {
            int count = len / unit;
            ivsFor(count);
            ivgen.ivs(firstUnit, count, ivs);
            for (int u = 0; u < count; u++) {
                engine.cbc(buf, off + u * unit, unit, ivs, u * blockBytes, encrypt);
            }
        }
    }

    /** No IV: QEMU computes none for ECB, whatever IV generator the header names. */
    private static final class Ecb extends SectorCipher {
        private final BlockEngine engine;
        private byte[] work = new byte[0];

        Ecb(CipherAlgorithm algorithm, byte[] key, IvGenerator ivgen, int unit) {
            super(ivgen, unit, algorithm.blockBytes());
            engine = algorithm.engine(key);
        }

        @Override
        void units(byte[] buf, int off, int len, long firstUnit, boolean encrypt) {
            work = atLeast(work, len);
            System.arraycopy(buf, off, work, 0, len);
            if (encrypt) {
                engine.encrypt(work, 0, len, buf, off);
            } else {
                engine.decrypt(work, 0, len, buf, off);
            }
        }
    }

    /**
     * Each unit's IV is its first counter block; the counter counts up as one big-endian number over the whole block
     * (as nettle and libgcrypt count), and the key stream is the encrypted counters. Encryption and decryption are the
     * same XOR.
     */
    private static final class Ctr extends SectorCipher {
        private final BlockEngine engine;
        private byte[] stream = new byte[0];

        Ctr(CipherAlgorithm algorithm, byte[] key, IvGenerator ivgen, int unit) {
            super(ivgen, unit, algorithm.blockBytes());
            engine = algorithm.engine(key);
        }

        @Override
        void units(byte[] buf, int off, int len, long firstUnit, boolean encrypt) {
            int count = len / unit;
            ivsFor(count);
            stream = atLeast(stream, len);
            ivgen.ivs(firstUnit, count, ivs);
            int bs = blockBytes;
            for (int u = 0; u < count; u++) {
                int at = u * unit;
                System.arraycopy(ivs, u * bs, stream, at, bs);
                for (int b = at + bs; b < at + unit; b += bs) {
                    System.arraycopy(stream, b - bs, stream, b, bs);
                    for (int i = b + bs - 1; i >= b; i--) {
                        if (++stream[i] != 0) {
                            break;
                        }
                    }
                }
            }
            engine.encrypt(stream, 0, len, stream, 0);
            for (int i = 0; i < len; i++) {
                buf[off + i] ^= stream[i];
            }
        }
    }
}
