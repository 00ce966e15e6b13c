package imago.luks.crypto;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import javax.crypto.Cipher;

/**
 * The initialisation vector of each 512-byte sector, as dm-crypt and QEMU compute them: {@code plain} (the sector
 * number's low 32 bits, little-endian), {@code plain64} (all 64 bits) and {@code essiv} (the {@code plain64} block
 * encrypted with a key hashed from the master key). Not thread-safe: one per {@link SectorCipher}.
 */
public abstract sealed class IvGenerator {
    private static final VarHandle LONG_LE = MethodHandles.byteArrayViewVarHandle(long[].class,
            ByteOrder.LITTLE_ENDIAN);

    /** The generator kinds, by their names in LUKS cipher modes and qemu-img's {@code ivgen-alg}. */
    public enum Kind {
        /** The sector number modulo 2^32. */
        PLAIN,
        /** The sector number. */
        PLAIN64,
        /** The sector number encrypted with the hash of the key (encrypted salt-sector IV). */
        ESSIV
    }

    private IvGenerator() {
    }

    /**
     * A generator of {@code kind} for 16-byte IVs; ESSIV hashes {@code masterKey} with {@code essivHash} into an AES
     * key of the hash's length, which must be 16, 24 or 32 bytes.
     *
     * @throws IllegalArgumentException if ESSIV's hash gives no AES key length
     */
    public static IvGenerator of(Kind kind, LuksHash essivHash, byte[] masterKey) {
        return switch (kind) {
            case PLAIN -> new Plain(0xffffffffL);
            case PLAIN64 -> new Plain(-1L);
            case ESSIV -> new Essiv(essivHash, masterKey);
        };
    }

    /** Writes the IVs of {@code count} sectors from {@code firstSector} on into {@code ivs}, 16 bytes each. */
    abstract void ivs(long firstSector, int count, byte[] ivs);

    static void plain(long firstSector, int count, byte[] ivs, long mask) {
        Arrays.fill(ivs, 0, count * 16, (byte) 0);
        for (int i = 0; i < count; i++) {
            LONG_LE.set(ivs, i * 16, (firstSector + i) & mask);
        }
    }

    private static final class Plain extends IvGenerator {
        private final long mask;

        Plain(long mask) {
            this.mask = mask;
        }

        @Override
        void ivs(long firstSector, int count, byte[] ivs) {
            plain(firstSector, count, ivs, mask);
        }
    }

    private static final class Essiv extends IvGenerator {
        private final Cipher cipher;

        Essiv(LuksHash hash, byte[] masterKey) {
            int n = hash.length();
            if (n != 16 && n != 24 && n != 32) {
                throw new IllegalArgumentException("ESSIV hash " + hash.luksName() + " gives a " + (n * 8)
                        + "-bit key, which AES does not take");
            }
            byte[] salt = hash.digest().digest(masterKey);
            try {
                cipher = Aes.cipher("AES/ECB/NoPadding", Cipher.ENCRYPT_MODE, salt);
            } finally {
                Arrays.fill(salt, (byte) 0);
            }
        }

        @Override
        void ivs(long firstSector, int count, byte[] ivs) {
            plain(firstSector, count, ivs, -1L);
            Aes.ecb(cipher, ivs, 0, count * 16);
        }
    }
}
