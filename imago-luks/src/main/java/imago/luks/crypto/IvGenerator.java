package imago.luks.crypto;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The initialisation vector of each sector, one cipher block long, as dm-crypt and QEMU compute them: {@code plain}
 * (the sector number's low 32 bits, little-endian), {@code plain64} (all 64 bits) and {@code essiv} (the
 * {@code plain64} block encrypted with a key hashed from the master key, by a cipher of the payload's family). Not
 * thread-safe: one per {@link SectorCipher}.
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

    /** The IV length: the payload cipher's block. */
    final int ivBytes;

    private IvGenerator(int ivBytes) {
        this.ivBytes = ivBytes;
    }

    /**
     * A generator of {@code kind} for {@code algorithm}'s blocks; ESSIV hashes {@code masterKey} with
     * {@code essivHash} into a key of {@code algorithm}'s family as long as the hash.
     *
     * @throws IllegalArgumentException if ESSIV's hash gives no key length of the family
     */
    public static IvGenerator of(Kind kind, CipherAlgorithm algorithm, LuksHash essivHash, byte[] masterKey) {
        int ivBytes = algorithm.blockBytes();
        return switch (kind) {
            case PLAIN -> new Plain(ivBytes, 0xffffffffL);
            case PLAIN64 -> new Plain(ivBytes, -1L);
            case ESSIV -> new Essiv(algorithm, essivHash, masterKey);
        };
    }

    /** Writes the IVs of {@code count} sectors from {@code firstSector} on into {@code ivs}, a block each. */
    abstract void ivs(long firstSector, int count, byte[] ivs);

    void plain(long firstSector, int count, byte[] ivs, long mask) {
        Arrays.fill(ivs, 0, count * ivBytes, (byte) 0);
        for (int i = 0; i < count; i++) {
            LONG_LE.set(ivs, i * ivBytes, (firstSector + i) & mask);
        }
    }

    private static final class Plain extends IvGenerator {
        private final long mask;

        Plain(int ivBytes, long mask) {
            super(ivBytes);
            this.mask = mask;
        }

        @Override
        void ivs(long firstSector, int count, byte[] ivs) {
            plain(firstSector, count, ivs, mask);
        }
    }

    private static final class Essiv extends IvGenerator {
        private final BlockEngine engine;

        Essiv(CipherAlgorithm algorithm, LuksHash hash, byte[] masterKey) {
            super(algorithm.blockBytes());
            if (!algorithm.validKey(hash.length())) {
                throw new IllegalArgumentException("ESSIV hash " + hash.luksName() + " gives a "
                        + (hash.length() * 8) + "-bit key, which " + algorithm.familyName() + " does not take");
            }
            byte[] salt = hash.digest().digest(masterKey);
            try {
                engine = algorithm.engine(salt);
            } finally {
                Arrays.fill(salt, (byte) 0);
            }
        }

        @Override
        void ivs(long firstSector, int count, byte[] ivs) {
            plain(firstSector, count, ivs, -1L);
            engine.encrypt(ivs, 0, count * ivBytes, ivs, 0);
        }
    }
}
