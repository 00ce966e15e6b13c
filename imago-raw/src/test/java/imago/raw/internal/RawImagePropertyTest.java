package imago.raw.internal;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.spi.BackingReader;
import imago.api.spi.Capability;
import imago.api.spi.FormatInstance;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.api.spi.WriteTicket;
import imago.storage.memory.MemoryStorage;
import imago.testkit.ImageModel;
import imago.testkit.ImageOp;
import imago.testkit.ImageOpGen;
import imago.testkit.PropertyRuns;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

/**
 * Random operation sequences on raw images over memory storage, against {@link ImageModel}. Memory
 * storage punches real holes, so discarded ranges must read as zeroes exactly. Sizes are any byte count, so
 * that images often end in a partial sector (the virtual size rounds it up).
 */
class RawImagePropertyTest {
    private static final int CHUNK = MemoryStorage.DEFAULT_CHUNK_SIZE;
    /** Five chunks and a bit: sizes, offsets and lengths straddle several chunk boundaries. */
    private static final ImageOpGen GEN = new ImageOpGen(5L * CHUNK + 1000, CHUNK);
    private static final AtomicInteger NAMES = new AtomicInteger();

    @Test
    void randomOperationSequencesMatchTheModel() {
        PropertyRuns.check("RawImagePropertyTest", 800, GEN.scenarios(50), s -> run(s, UnaryOperator.identity()),
                ImageOpGen.Scenario::withFewerSteps);
    }

    /** Creates a raw image as the scenario says, wraps its layer, and runs the steps against a model. */
    static void run(ImageOpGen.Scenario scenario, UnaryOperator<FormatInstance> wrap) {
        String name = "raw-property-" + NAMES.incrementAndGet();
        MemoryStorage storage = MemoryStorage.create(name);
        try {
            RawFormatDriver driver = new RawFormatDriver();
            driver.create(storage, CreateOptions.builder().size(scenario.initialSize())
                    .preallocation(scenario.preallocation()).build());
            FormatInstance layer = wrap.apply(driver.open(storage, OpenContext.of(true)));
            try (Image image = LayeredImage.builder("raw", layer, storage).writable(true).build()) {
                new ImageModel(scenario.initialSize(), ImageModel.DiscardSemantics.ZEROES, RawInstance::sectorAligned)
                        .run(image, scenario.ops());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            MemoryStorage.delete(name);
        }
    }

    /**
     * Proves the harness finds and shrinks a bug: a layer that silently ignores large unmapping zero
     * writes must be caught, and the counterexample reduced to the steps that matter.
     */
    @Test
    void aPlantedBugIsFoundAndShrunk() {
        Consumer<ImageOpGen.Scenario> buggy = s -> run(s, IgnoresLargeUnmaps::new);
        PropertyRuns.Failure<ImageOpGen.Scenario> found = PropertyRuns.falsify(1234, 500, GEN.scenarios(40), buggy)
                .orElseThrow(() -> new AssertionError("the planted bug was not found"));
        assertThrows(AssertionError.class, () -> buggy.accept(found.value()), "QuickTheories' counterexample fails");
        PropertyRuns.Failure<ImageOpGen.Scenario> minimal = PropertyRuns.minimise(found, buggy,
                ImageOpGen.Scenario::withFewerSteps);
        List<ImageOp> ops = minimal.value().ops();
        // a write of something to zero, then the unmapping zero write the layer ignores
        assertTrue(ops.size() <= 2, "not minimised: " + minimal.value());
        assertTrue(ops.getLast() instanceof ImageOp.WriteZeroes z && z.mayUnmap() && z.length() >= 2048,
                "the counterexample must end with a large zero write with MAY_UNMAP: " + minimal.value());
        run(minimal.value(), UnaryOperator.identity());
    }

    @Test
    void modelNoticesAnImageThatLosesData() {
        // A sanity check of the model itself: a write that the image drops must be reported.
        ImageOpGen.Scenario s = new ImageOpGen.Scenario(4096, Preallocation.OFF,
                List.of(new ImageOp.Write(0, 100, 7), new ImageOp.Read(0, 100)));
        AssertionError e = assertThrows(AssertionError.class, () -> run(s, DropsWrites::new));
        assertTrue(e.getMessage().startsWith("step 1 Read"), e.getMessage());
    }

    /** Forwards everything to a real layer. */
    private static class Forwarding implements FormatInstance {
        final FormatInstance inner;

        Forwarding(FormatInstance inner) {
            this.inner = inner;
        }

        @Override
        public long size() {
            return inner.size();
        }

        @Override
        public Mapping mapping(long offset, long maxLength) throws IOException {
            return inner.mapping(offset, maxLength);
        }

        @Override
        public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
            return inner.beginWrite(offset, length, below);
        }

        @Override
        public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
            return inner.ensureZeroMapping(offset, length, mayUnmap);
        }

        @Override
        public void discard(long offset, long length) throws IOException {
            inner.discard(offset, length);
        }

        @Override
        public <C extends Capability> Optional<C> capability(Class<C> type) {
            return inner.capability(type);
        }

        @Override
        public void flush() throws IOException {
            inner.flush();
        }

        @Override
        public void sync() throws IOException {
            inner.sync();
        }

        @Override
        public void close() throws IOException {
            inner.close();
        }
    }

    /** Claims to zero large unmapping requests without doing anything. */
    private static final class IgnoresLargeUnmaps extends Forwarding {
        IgnoresLargeUnmaps(FormatInstance inner) {
            super(inner);
        }

        @Override
        public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
            if (mayUnmap && length >= 2048) {
                return length;
            }
            return inner.ensureZeroMapping(offset, length, mayUnmap);
        }
    }

    /** Maps writes to a scratch area past the guest bytes' own place, so they never show up. */
    private static final class DropsWrites extends Forwarding {
        DropsWrites(FormatInstance inner) {
            super(inner);
        }

        @Override
        public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
            try (WriteTicket t = inner.beginWrite(offset, length, below)) {
                t.commit();
                Mapping.Data d = t.mapping();
                return WriteTicket.of(new Mapping.Data(offset, d.length(), d.storage(), d.hostOffset() + (1 << 20)));
            }
        }
    }
}
