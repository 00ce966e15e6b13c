package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CreateOptions;
import imago.api.Secrets;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * LUKS1 and LUKS2 creation refuse options with the same checks, in the same order and words: each case below has
 * the defect named and one that is checked later, so the first one's message is the one expected.
 */
class LuksCreateChecksTest {
    private static final String ITER_TIME_1 = "Parameter 'iter-time' expects a positive number of milliseconds, not '0'";
    private static final String ITER_TIME_2 = "Parameter 'iter-time' expects a number from 1 to "
            + Long.MAX_VALUE + ", not '0'";

    /** Good options of the version, of {@code size} bytes if not null, changed by {@code change}. */
    private static CreateOptions options(int version, Long size, Consumer<CreateOptions.Builder> change) {
        CreateOptions.Builder b = CreateOptions.builder().option("key-secret", "sec0").option("iter-time", "1")
                .secrets(Secrets.create().put("sec0", "pw".getBytes(StandardCharsets.UTF_8)));
        if (size != null) {
            b.size(size);
        }
        if (version == 2) {
            b.option("pbkdf", "pbkdf2");
        }
        change.accept(b);
        return b.build();
    }

    private static void check(int version, CreateOptions o) {
        if (version == 2) {
            Luks2Create.check(o);
        } else {
            LuksCreate.check(o);
        }
    }

    private static String refusal(int version, Long size, Consumer<CreateOptions.Builder> change) {
        CreateOptions o = options(version, size, change);
        return assertThrows(IllegalArgumentException.class, () -> check(version, o)).getMessage();
    }

    private static String refusal(int version, Consumer<CreateOptions.Builder> change) {
        return refusal(version, 1L << 20, change);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void refusesInTheSameOrderAndWords(int version) {
        check(version, options(version, 1L << 20, b -> { }));
        assertEquals("Invalid parameter 'foo' for format 'luks'", refusal(version, b -> b.option("foo", "1")
                .backingFile("base")));
        assertEquals("Backing file not supported for file format 'luks'", refusal(version, null, b -> b
                .backingFile("base")));
        assertEquals("Image creation needs a size parameter", refusal(version, null, b -> b
                .option("cipher-alg", "foo")));
        assertEquals("Parameter 'cipher-alg' does not accept value 'foo'", refusal(version, b -> b
                .option("cipher-alg", "foo").option("iter-time", "0")));
        assertEquals("Parameter 'hash-alg' does not accept value 'foo'", refusal(version, b -> b
                .option("hash-alg", "foo").option("iter-time", "0")));
        assertEquals(version == 1 ? ITER_TIME_1 : ITER_TIME_2, refusal(version, b -> b.option("iter-time", "0")
                .option("key-secret", "nosuch")));
        assertEquals("No secret with id 'nosuch'", refusal(version, b -> b.option("key-secret", "nosuch")));
    }

    @Test
    void onlyLuks2TakesItsOwnOptions() {
        assertEquals("Invalid parameter 'pbkdf' for format 'luks'", refusal(1, b -> b.option("pbkdf", "pbkdf2")));
        assertEquals("Invalid parameter 'bar' for format 'luks'", refusal(2, b -> b.option("bar", "1")));
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void measureRefusesUnknownOptionsThenAMissingSecret(int version) {
        Map<Integer, Function<CreateOptions, Object>> measure = Map.of(
                1, o -> LuksCreate.measure(o, 1 << 20), 2, o -> Luks2Create.measure(o, 1 << 20));
        CreateOptions unknown = CreateOptions.builder().option("foo", "1").build();
        assertEquals("Invalid parameter 'foo' for format 'luks'", assertThrows(IllegalArgumentException.class,
                () -> measure.get(version).apply(unknown)).getMessage());
        assertEquals("Parameter 'key-secret' is required for cipher", assertThrows(IllegalArgumentException.class,
                () -> measure.get(version).apply(CreateOptions.builder().build())).getMessage());
    }
}
