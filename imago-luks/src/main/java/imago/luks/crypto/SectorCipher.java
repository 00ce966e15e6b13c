package imago.luks.crypto;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * AES over whole encryption units (512-byte sectors for LUKS), in XTS (IEEE P1619, NIST SP 800-38E) or CBC mode,
 * each unit's IV from an {@link IvGenerator}. Built on the JDK's AES block cipher, one bulk call per run of
 * units, so the CPU's AES instructions do the work. Not thread-safe: callers keep one per thread (a pool).
 */
public abstract sealed class SectorCipher {
    /** The LUKS encryption unit. */
    public static final int SECTOR = 512;
    private static final int CHUNK = 256 * 1024;
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

    private void run(byte[] buf, int off, int len, long firstUnit, boolean encrypt) {
        if (len % unit != 0) {
            throw new IllegalArgumentException(len + " bytes are not whole " + unit + "-byte units");
        }
        int chunk = CHUNK / unit * unit;
        for (int done = 0; done < len; done += chunk) {
            int n = Math.min(chunk, len - done);
            units(buf, off + done, n, firstUnit + done / unit, encrypt);
        }
    }

    abstract void units(byte[] buf, int off, int len, long firstUnit, boolean encrypt);

    private static final class Xts extends SectorCipher {
        private final Cipher encryptData;
        private final Cipher decryptData;
        private final Cipher tweak;
        private byte[] tweaks = new byte[0];
        private byte[] ivs = new byte[0];

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

        @Override
        void units(byte[] buf, int off, int len, long firstUnit, boolean encrypt) {
            int count = len / unit;
            if (tweaks.length < len) {
                tweaks = new byte[len];
            }
            if (ivs.length < count * 16) {
                ivs = new byte[count * 16];
            }
            ivgen.ivs(firstUnit, count, ivs);
            Aes.ecb(tweak, ivs, 0, count * 16);
            // each unit's tweaks: T0 = E(K2, IV), then T(j+1) = T(j) times x in GF(2^128), little-endian
            for (int u = 0; u < count; u++) {
                long lo = (long) LONG_LE.get(ivs, u * 16);
                long hi = (long) LONG_LE.get(ivs, u * 16 + 8);
                for (int b = u * unit, end = b + unit; b < end; b += 16) {
                    LONG_LE.set(tweaks, b, lo);
                    LONG_LE.set(tweaks, b + 8, hi);
                    long carry = hi >> 63;
                    hi = (hi << 1) | (lo >>> 63);
                    lo = (lo << 1) ^ (carry & 0x87);
                }
            }
            xor(buf, off, tweaks, len);
            Aes.ecb(encrypt ? encryptData : decryptData, buf, off, len);
            xor(buf, off, tweaks, len);
        }

        private static void xor(byte[] buf, int off, byte[] with, int len) {
            for (int i = 0; i < len; i += 8) {
                LONG_LE.set(buf, off + i, (long) LONG_LE.get(buf, off + i) ^ (long) LONG_LE.get(with, i));
            }
        }
    }

    private static final class Cbc extends SectorCipher {
        private final Cipher cipher;
        private final SecretKeySpec key;
        private byte[] ivs = new byte[0];

        Cbc(byte[] key, IvGenerator ivgen, int unit) {
            super(ivgen, unit);
            if (!validKeyLength(Mode.CBC, key.length)) {
                throw new IllegalArgumentException("CBC takes an AES key of 16, 24 or 32 bytes, not " + key.length
                        + " bytes");
            }
            this.cipher = Aes.cipher("AES/CBC/NoPadding", Cipher.ENCRYPT_MODE, key);
            this.key = new SecretKeySpec(key, "AES");
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
                    cipher.doFinal(buf, off + u * unit, unit, buf, off + u * unit);
                }
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("AES-CBC failed on whole blocks", e);
            }
        }
    }
}
