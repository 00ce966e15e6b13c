package imago.luks.crypto;

import org.bouncycastle.crypto.engines.SerpentEngine;

/**
 * Whether Bouncy Castle, an optional module ({@code requires static}), is here: it is read only when something put
 * it in the module graph (or both are on the class path).
 */
final class BouncyCastle {
    private static final boolean AVAILABLE = check();

    private BouncyCastle() {
    }

    static boolean available() {
        return AVAILABLE;
    }

    /** The refusal of an algorithm ({@code cipher serpent}, {@code hash ripemd160}) that needs Bouncy Castle. */
    static String missing(String what) {
        return what + " needs Bouncy Castle (org.bouncycastle:bcprov-jdk18on, module "
                + "org.bouncycastle.provider) on the module or class path";
    }

    private static boolean check() {
        try {
            return Probe.check();
        } catch (LinkageError e) {
            return false;
        }
    }

    /** The only code that names a Bouncy Castle type here, so that loading {@link BouncyCastle} never needs it. */
    private static final class Probe {
        static boolean check() {
            // a class literal, not a constant (javac inlines those): this loads the class, or fails to link
            return SerpentEngine.class.getName().startsWith("org.bouncycastle.");
        }
    }
}
