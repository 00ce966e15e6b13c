package imago.luks.internal;

import imago.api.CreateOptions;
import imago.api.spi.CreateChecks;
import java.util.Arrays;
import java.util.Collection;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The checks of a new LUKS container's options that LUKS1 ({@link LuksCreate}) and LUKS2 ({@link Luks2Create})
 * share, in qemu-img's order and words: the version's own options only, no backing file, a size, a cipher and a
 * hash the container can use, then the version's own values, last a {@code key-secret} that names a secret.
 */
final class LuksCreateChecks {
    private LuksCreateChecks() {
    }

    /**
     * Refuses {@code options} as the version's create would, before anything is written (qemu-img refuses them
     * before it makes the file).
     *
     * @param known the version's option names
     * @param own the version's own value checks, run after the cipher's and before the secret's
     * @throws IllegalArgumentException if an option is unknown or invalid
     */
    static void check(CreateOptions options, Collection<String> known, Consumer<Map<String, String>> own) {
        Arrays.fill(passphrase(options, known, own), (byte) 0);
    }

    /**
     * Checks {@code options} as {@link #check} does and returns the passphrase they name, which the caller wipes.
     *
     * @throws IllegalArgumentException if an option is unknown or invalid, or names no secret
     */
    static byte[] passphrase(CreateOptions options, Collection<String> known, Consumer<Map<String, String>> own) {
        Map<String, String> o = options.formatOptions();
        knownOnly(o, known);
        CreateChecks.noBackingFile(options, "luks");
        CreateChecks.size(options);
        LuksCipherSpec.fromOptions(o.get("cipher-alg"), o.get("cipher-mode"), o.get("ivgen-alg"),
                o.get("ivgen-hash-alg"));
        LuksCipherSpec.pbkdfHash(o.get("hash-alg"));
        own.accept(o);
        String secretId = secretId(o);
        return options.secrets().get(secretId).orElseThrow(() -> new IllegalArgumentException(
                "No secret with id '" + secretId + "'"));
    }

    /**
     * The checks {@code measure} makes before any value: only the version's options, and a {@code key-secret}
     * (qemu-img asks for one though it measures without it).
     *
     * @throws IllegalArgumentException if an option is unknown or there is no {@code key-secret}
     */
    static void measurable(Map<String, String> o, Collection<String> known) {
        knownOnly(o, known);
        secretId(o);
    }

    private static void knownOnly(Map<String, String> o, Collection<String> known) {
        for (String name : o.keySet()) {
            if (!known.contains(name)) {
                throw new IllegalArgumentException("Invalid parameter '" + name + "' for format 'luks'");
            }
        }
    }

    private static String secretId(Map<String, String> o) {
        String secretId = o.get("key-secret");
        if (secretId == null) {
            throw new IllegalArgumentException("Parameter 'key-secret' is required for cipher");
        }
        return secretId;
    }
}
