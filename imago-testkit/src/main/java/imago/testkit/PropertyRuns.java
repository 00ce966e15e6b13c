package imago.testkit;

import static org.quicktheories.QuickTheory.qt;

import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.function.Consumer;
import java.util.function.Function;
import org.quicktheories.api.AsString;
import org.quicktheories.core.Gen;
import org.quicktheories.core.Reporter;

/**
 * Runs a QuickTheories property with a printed, replayable seed: {@code -Dimago.seed=N} replays a run,
 * {@code -Dimago.examples=N} changes how many examples it tries.
 *
 * <p>QuickTheories shrinks by simplifying the random draws behind a value: in an operation sequence,
 * every step that does not matter becomes the simplest step (a zero-length read or write), but steps are
 * not taken out of the middle of a list. So after QuickTheories has shrunk a failure, a greedy pass
 * removes steps while the property still fails ({@code smaller} proposes the candidates), and the
 * failure reports the seed, QuickTheories' counterexample and the minimised one, with the minimised
 * one's failure as the cause.
 */
public final class PropertyRuns {
    /** Bounds the time spent shrinking a failure whose examples are expensive. */
    private static final int SHRINK_CYCLES = 3000;
    /** Bounds the runs of the step-removal pass. */
    private static final int MINIMISE_RUNS = 2000;

    private PropertyRuns() {
    }

    /** The seed to use: {@code imago.seed} if set, else a fresh random one; printed either way. */
    public static long seed(String property) {
        String given = System.getProperty("imago.seed");
        long seed = given != null ? Long.decode(given.trim()) : new Random().nextLong();
        System.out.println(property + " seed: " + seed + " (replay with -Dimago.seed=" + seed + ")");
        return seed;
    }

    /**
     * Checks {@code check} on {@code defaultExamples} values of {@code gen} (or {@code imago.examples}).
     *
     * @throws AssertionError if the property fails, as described in the class comment
     */
    public static <T> void check(String property, int defaultExamples, Gen<T> gen, Consumer<T> check,
            Function<T, List<T>> smaller) {
        long seed = seed(property);
        Optional<Failure<T>> failure = falsify(seed, Integer.getInteger("imago.examples", defaultExamples), gen, check);
        if (failure.isPresent()) {
            Failure<T> shrunk = failure.get();
            Failure<T> minimal = minimise(shrunk, check, smaller);
            throw new AssertionError(property + " failed with seed " + seed + " (replay with -Dimago.seed=" + seed
                    + ")\nQuickTheories' smallest counterexample: " + shrunk.value()
                    + "\nminimised to: " + minimal.value() + "\nwhich fails with: " + minimal.cause(), minimal.cause());
        }
    }

    /**
     * A value that fails the property, and how.
     *
     * @param value the failing value
     * @param cause how it failed
     * @param <T> the value's type
     */
    public record Failure<T>(T value, Throwable cause) { }

    /** Runs QuickTheories and returns its shrunk counterexample, if it finds one. */
    @SuppressWarnings("unchecked")
    public static <T> Optional<Failure<T>> falsify(long seed, int examples, Gen<T> gen, Consumer<T> check) {
        Failure<?>[] found = new Failure<?>[1];
        Reporter capture = new Reporter() {
            @Override
            public void falisification(long s, int used, Object smallest, Throwable cause, List<Object> others,
                    AsString<Object> asString) {
                found[0] = new Failure<>(smallest, cause);
            }

            @Override
            public void falisification(long s, int used, Object smallest, List<Object> others,
                    AsString<Object> asString) {
                found[0] = new Failure<>(smallest, new AssertionError("property returned false"));
            }

            @Override
            public void valuesExhausted(int used) {
                throw new AssertionError("could not generate enough values after " + used + " examples");
            }
        };
        qt().withFixedSeed(seed).withExamples(examples).withShrinkCycles(SHRINK_CYCLES).withReporter(capture)
                .forAll(gen).checkAssert(check);
        return Optional.ofNullable((Failure<T>) found[0]);
    }

    /**
     * {@code steps} with blocks of consecutive steps removed, largest blocks first (half the list, then a
     * quarter, ... down to single steps): the usual {@code smaller} for operation sequences.
     */
    public static <S> List<List<S>> withoutBlocks(List<S> steps) {
        List<List<S>> out = new java.util.ArrayList<>();
        int n = steps.size();
        for (int block = Math.max(1, n / 2); n > 0; block /= 2) {
            for (int start = 0; start + block <= n; start += block) {
                List<S> rest = new java.util.ArrayList<>(steps.subList(0, start));
                rest.addAll(steps.subList(start + block, n));
                out.add(List.copyOf(rest));
            }
            if (block == 1) {
                break;
            }
        }
        return out;
    }

    /** Greedily replaces the failure by a smaller candidate that still fails, until none does. */
    public static <T> Failure<T> minimise(Failure<T> failure, Consumer<T> check, Function<T, List<T>> smaller) {
        Failure<T> current = failure;
        int runs = 0;
        boolean progress = true;
        while (progress && runs < MINIMISE_RUNS) {
            progress = false;
            for (T candidate : smaller.apply(current.value())) {
                if (++runs > MINIMISE_RUNS) {
                    break;
                }
                try {
                    check.accept(candidate);
                } catch (AssertionError | RuntimeException e) {
                    current = new Failure<>(candidate, e);
                    progress = true;
                    break;
                }
            }
        }
        return current;
    }
}
