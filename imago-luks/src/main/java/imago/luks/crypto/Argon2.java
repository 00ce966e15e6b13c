package imago.luks.crypto;

import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;

/**
 * Argon2 (RFC 9106, version 0x13, no secret and no associated data, as LUKS2 uses it) through Bouncy Castle's
 * implementation. Bouncy Castle is an optional module: LUKS1 and PBKDF2 key slots never load this class's
 * dependency, and {@link #available()} tells whether an Argon2 slot can be opened at all. The caller bounds the
 * memory and time: this runs as asked.
 */
public final class Argon2 {
    /** The two Argon2 variants LUKS2 key slots use. */
    public enum Type {
        /** Data-independent addressing. */
        ARGON2I,
        /** Hybrid addressing (cryptsetup's default). */
        ARGON2ID
    }

    private Argon2() {
    }

    /** Whether Bouncy Castle's Argon2 can be loaded (its module is present and readable). */
    public static boolean available() {
        try {
            return Bc.check();
        } catch (LinkageError e) {
            return false;
        }
    }

    /**
     * Derives {@code length} bytes from {@code password} and {@code salt}.
     *
     * @param passes the time cost (iterations over memory)
     * @param memoryKiB the memory cost in KiB
     * @param lanes the parallelism (computed here on one thread: the result does not depend on threads)
     * @throws UnsupportedOperationException if Bouncy Castle is not present
     */
    public static byte[] derive(Type type, byte[] password, byte[] salt, int passes, int memoryKiB, int lanes,
            int length) {
        try {
            return Bc.derive(type, password, salt, passes, memoryKiB, lanes, length);
        } catch (LinkageError e) {
            throw new UnsupportedOperationException("Argon2 needs Bouncy Castle (org.bouncycastle:bcprov-jdk18on, "
                    + "module org.bouncycastle.provider) on the module or class path", e);
        }
    }

    /** The only class that names Bouncy Castle's types, so that loading {@link Argon2} never needs them. */
    private static final class Bc {
        static boolean check() {
            // a class literal, not a constant (javac inlines those): this loads the class, or fails to link
            return Argon2BytesGenerator.class.getName().startsWith("org.bouncycastle.");
        }

        static byte[] derive(Type type, byte[] password, byte[] salt, int passes, int memoryKiB, int lanes,
                int length) {
            Argon2Parameters params = new Argon2Parameters.Builder(type == Type.ARGON2I
                    ? Argon2Parameters.ARGON2_i : Argon2Parameters.ARGON2_id)
                    .withVersion(Argon2Parameters.ARGON2_VERSION_13)
                    .withSalt(salt)
                    .withIterations(passes)
                    .withMemoryAsKB(memoryKiB)
                    .withParallelism(lanes)
                    .build();
            Argon2BytesGenerator g = new Argon2BytesGenerator();
            g.init(params);
            byte[] out = new byte[length];
            g.generateBytes(password, out);
            params.clear();
            return out;
        }
    }
}
