package imago.benchmarks;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Reads through the generic I/O path of a raw image on a page-cached file: sequential 1 MiB reads of
 * the whole image, and random 4 KiB reads. Scores are bytes-per-second-comparable throughputs that
 * {@code benchmarks/compare} puts next to {@code qemu-img bench} on the same file.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class RawReadBenchmark {
    @Param("256")
    public int sizeMiB;

    private Path file;
    private Image image;
    private ByteBuffer big;
    private ByteBuffer small;
    private SplittableRandom random;

    /** Creates a fully written raw image and opens it. @throws IOException if the file cannot be made */
    @Setup(Level.Trial)
    public void setUp() throws IOException {
        file = Files.createTempFile("imago-bench", ".raw");
        long size = (long) sizeMiB << 20;
        Imago.create(file, "raw", CreateOptions.ofSize(size));
        try (Image w = Imago.opener().path(file).format("raw").writable(true).open()) {
            ByteBuffer chunk = ByteBuffer.allocateDirect(1 << 20);
            for (int i = 0; i < chunk.capacity(); i++) {
                chunk.put(i, (byte) (i * 31 + 7));
            }
            for (long off = 0; off < size; off += chunk.capacity()) {
                w.write(chunk.clear(), off);
            }
        }
        image = Imago.opener().path(file).format("raw").open();
        big = ByteBuffer.allocateDirect(1 << 20);
        small = ByteBuffer.allocateDirect(4096);
        random = new SplittableRandom(1);
    }

    /** Closes and deletes the image. @throws IOException if it cannot be closed */
    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        image.close();
        Files.deleteIfExists(file);
    }

    /** One pass over the whole image in 1 MiB reads. @return a byte, so the reads cannot be elided */
    @Benchmark
    public byte sequentialWholeImage() throws IOException {
        long size = image.size();
        for (long off = 0; off < size; off += big.capacity()) {
            image.read(big.clear(), off);
        }
        return big.get(0);
    }

    /** One 4 KiB read at a random aligned offset. @return a byte, so the read cannot be elided */
    @Benchmark
    public byte random4k() throws IOException {
        long blocks = image.size() / 4096;
        image.read(small.clear(), random.nextLong(blocks) * 4096);
        return small.get(0);
    }
}
