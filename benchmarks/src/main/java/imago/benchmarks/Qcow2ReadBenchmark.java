package imago.benchmarks;

import imago.api.Image;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.ByteBuffer;
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
 * Reads qemu-img-made images through {@link Image#read} on page-cached files (see {@link BenchImages}):
 * a fully allocated qcow2, zlib- and zstd-compressed qcow2 copies of it, and the raw original for
 * reference. Two workloads, both depth 1 (one thread, one request at a time):
 * <ul>
 *   <li>{@code sequentialWholeImage}: one pass over the whole image in 1 MiB reads; score = seconds
 *       per pass (divide the image size by it for bytes per second);</li>
 *   <li>{@code random4k}: one 4 KiB read at a uniformly random 4 KiB-aligned offset; score =
 *       microseconds per read. On a compressed image almost every read decompresses a whole cluster.</li>
 * </ul>
 * Run: {@code benchmarks/run Qcow2ReadBenchmark} (add {@code -p variant=zstd}, {@code -p sizeMiB=256}...).
 */
@State(Scope.Benchmark)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
public class Qcow2ReadBenchmark {
    /** Image size in MiB. */
    @Param("1024")
    public int sizeMiB;

    /** raw, qcow2 (fully allocated), zlib or zstd (compressed qcow2). */
    @Param({"qcow2", "zlib", "zstd", "raw"})
    public String variant;

    private Image image;
    private ByteBuffer big;
    private ByteBuffer small;
    private SplittableRandom random;
    private long blocks;

    /** Makes the file if needed (qemu-img), caches it, opens it read-only. @throws Exception if it cannot */
    @Setup(Level.Trial)
    public void setUp() throws Exception {
        BenchImages.Variant v = BenchImages.Variant.of(variant);
        image = Imago.opener().path(BenchImages.ensure(v, sizeMiB)).format(v.format).open();
        big = ByteBuffer.allocateDirect(1 << 20);
        small = ByteBuffer.allocateDirect(4096);
        random = new SplittableRandom(1);
        blocks = image.size() / 4096;
    }

    /** Closes the image (the file stays for the next fork or run). @throws IOException if it cannot */
    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        image.close();
    }

    /** One pass over the whole image in 1 MiB reads. @return a byte, so the reads cannot be elided */
    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MILLISECONDS)
    public byte sequentialWholeImage() throws IOException {
        long size = image.size();
        for (long off = 0; off < size; off += big.capacity()) {
            image.read(big.clear().limit((int) Math.min(big.capacity(), size - off)), off);
        }
        return big.get(0);
    }

    /** One 4 KiB read at a random aligned offset. @return a byte, so the read cannot be elided */
    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public byte random4k() throws IOException {
        image.read(small.clear(), random.nextLong(blocks) * 4096);
        return small.get(0);
    }
}
