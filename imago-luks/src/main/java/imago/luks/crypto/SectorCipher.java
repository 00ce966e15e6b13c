package imago.luks.crypto;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * AES over whole encryption units (512-byte sectors for LUKS), in XTS (IEEE P1619, NIST SP 800-38E) or CBC mode,
 * each unit's IV from an {@link IvGenerator}. Built on the JDK's AES block cipher, one bulk call per batch of
 * units, so the CPU's AES instructions do the work; a batch is small enough (64 KiB) that its bytes and tweaks stay
 * in the CPU's cache between the passes over them. Not thread-safe: callers keep one per thread (a pool).
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
        /** XEX-based tweaked codebook with ciphertext stealing (no stealing: units are whole blocks). */
        XTS,
        /** Cipher block chaining, restarted at every unit. */
        CBC
    }

    final IvGenerator ivgen;
    final int unit;
    /** Where direct buffers are encrypted, a batch at a time. */
    private byte[] batch;

    private SectorCipher(IvGenerator ivgen, int unit) {
        this.ivgen = ivgen;
        this.unit = unit;
    }

    /**
     * A cipher for {@code mode} with {@code key} (for XTS the data key then the tweak key, each 16, 24 or 32
     * bytes; for CBC one AES key) over units of {@code unitBytes} (a multiple of 16).
     *
     * @throws IllegalArgumentException if the key length does not fit the mode
     */
    public static SectorCipher of(Mode mode, byte[] key, IvGenerator ivgen, int unitBytes) {
        if (unitBytes <= 0 || unitBytes % 16 != 0) {
            throw new IllegalArgumentException("unit of " + unitBytes + " bytes is not a whole number of AES blocks");
        }
        return switch (mode) {
            case XTS -> new Xts(key, ivgen, unitBytes);
            case CBC -> new Cbc(key, ivgen, unitBytes);
        };
    }

    /** Whether {@code keyBytes} is a valid key length for {@code mode}. */
    public static boolean validKeyLength(Mode mode, int keyBytes) {
        int aes = mode == Mode.XTS ? keyBytes / 2 : keyBytes;
        return (mode != Mode.XTS || keyBytes % 2 == 0) && (aes == 16 || aes == 24 || aes == 32);
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

    private static final class Xts extends SectorCipher {
        private final Cipher encryptData;
        private final Cipher decryptData;
        private final Cipher tweak;
        private byte[] ivs = new byte[0];
        private byte[] firstTweaks = new byte[0];
        private byte[] work = new byte[0];

        Xts(byte[] key, IvGenerator ivgen, int unit) {
            super(ivgen, unit);
            if (!validKeyLength(Mode.XTS, key.length)) {
                throw new IllegalArgumentException("XTS takes two AES keys of 16, 24 or 32 bytes, not " + key.length
                        + " bytes");
            }
            byte[] dataKey = Arrays.copyOfRange(key, 0, key.length / 2);
            byte[] tweakKey = Arrays.copyOfRange(key, key.length / 2, key.length);
            encryptData = Aes.cipher("AES/ECB/NoPadding", Cipher.ENCRYPT_MODE, dataKey);
            decryptData = Aes.cipher("AES/ECB/NoPadding", Cipher.DECRYPT_MODE, dataKey);
            tweak = Aes.cipher("AES/ECB/NoPadding", Cipher.ENCRYPT_MODE, tweakKey);
            Arrays.fill(dataKey, (byte) 0);
            Arrays.fill(tweakKey, (byte) 0);
        }

        /**
         * Per unit u: T0 = E(K2, IV(u)), then T(j+1) = T(j) times x in GF(2^128); block j becomes E(K1, P xor Tj) xor
         * Tj. The first XOR writes into {@code work} and AES reads from there back into {@code buf}: the JDK copies
         * what it encrypts in place to a new array first, which would cost an allocation a batch.
         */
        @Override
        void units(byte[] buf, int off, int len, long firstUnit, boolean encrypt) {
            int count = len / unit;
            if (ivs.length < count * 16) {
                ivs = new byte[count * 16];
                firstTweaks = new byte[count * 16];
            }
            if (work.length < len) {
                work = new byte[len];
            }
            ivgen.ivs(firstUnit, count, ivs);
            Aes.ecb(tweak, ivs, 0, count * 16, firstTweaks, 0);
            for (int u = 0; u < count; u++) {
                whiten(buf, off + u * unit, work, u * unit, unit, firstTweaks, u * 16);
            }
            Aes.ecb(encrypt ? encryptData : decryptData, work, 0, len, buf, off);
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
        private final Cipher cipher;
        private final SecretKeySpec key;
        private byte[] ivs = new byte[0];
        /** One unit's output: the JDK copies what it encrypts in place to a new array first. */
        private final byte[] out;

        Cbc(byte[] key, IvGenerator ivgen, int unit) {
            super(ivgen, unit);
            if (!validKeyLength(Mode.CBC, key.length)) {
                throw new IllegalArgumentException("CBC takes an AES key of 16, 24 or 32 bytes, not " + key.length
                        + " bytes");
            }
            this.cipher = Aes.cipher("AES/CBC/NoPadding", Cipher.ENCRYPT_MODE, key);
            this.key = new SecretKeySpec(key, "AES");
            this.out = new byte[unit];
        }

        @Override
        void units(byte[] buf, int off, int len, long firstUnit, boolean encrypt) {
            int count = len / unit;
            if (ivs.length < count * 16) {
                ivs = new byte[count * 16];
            }
            ivgen.ivs(firstUnit, count, ivs);
            try {
                for (int u = 0; u < count; u++) {
                    cipher.init(encrypt ? Cipher.ENCRYPT_MODE : Cipher.DECRYPT_MODE, key,
                            new IvParameterSpec(ivs, u * 16, 16));
                    cipher.doFinal(buf, off + u * unit, unit, out, 0);
                    System.arraycopy(out, 0, buf, off + u * unit, unit);
                }
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("AES-CBC failed on whole blocks", e);
            }
        }
    }
}
