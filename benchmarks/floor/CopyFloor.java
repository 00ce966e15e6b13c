import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * The least work any Java tool can do for {@code convert -O raw} of a fully allocated image, told the answer in
 * advance: no format parsing, no zero detection, no locks, no error reporting; the host runs of the guest's data,
 * given as {@code GUEST:LENGTH:HOST} triples (bytes), are copied into a new file of {@code SIZE} bytes in 2 MiB
 * chunks, one thread reading ahead into three direct buffers while the main thread writes. benchmarks/compare's
 * start-up section times it beside qemu-img convert, to show where a JVM's floor lies for that row; it is not
 * part of imago.
 *
 * <pre>java CopyFloor SOURCE TARGET SIZE GUEST:LENGTH:HOST...</pre>
 */
public final class CopyFloor {
    private static final int CHUNK = 2 << 20;
    private static final ByteBuffer END = ByteBuffer.allocate(0);

    private CopyFloor() {
    }

    public static void main(String[] args) throws Exception {
        long size = Long.parseLong(args[2]);
        long[][] runs = new long[args.length - 3][];
        for (int i = 3; i < args.length; i++) {
            String[] f = args[i].split(":");
            runs[i - 3] = new long[] {Long.parseLong(f[0]), Long.parseLong(f[1]), Long.parseLong(f[2])};
        }
        try (FileChannel in = FileChannel.open(Path.of(args[0]), StandardOpenOption.READ);
                FileChannel out = FileChannel.open(Path.of(args[1]), StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE)) {
            out.truncate(size);
            BlockingQueue<ByteBuffer> free = new ArrayBlockingQueue<>(3);
            BlockingQueue<ByteBuffer> full = new ArrayBlockingQueue<>(4);
            BlockingQueue<Long> where = new ArrayBlockingQueue<>(4);
            for (int i = 0; i < 3; i++) {
                free.add(ByteBuffer.allocateDirect(CHUNK));
            }
            Thread reader = new Thread(() -> {
                try {
                    for (long[] run : runs) {
                        for (long done = 0; done < run[1]; done += CHUNK) {
                            ByteBuffer b = free.take().clear();
                            b.limit((int) Math.min(CHUNK, run[1] - done));
                            while (b.hasRemaining()) {
                                if (in.read(b, run[2] + done + b.position()) < 0) {
                                    throw new IllegalStateException("source ends early");
                                }
                            }
                            where.put(run[0] + done);
                            full.put(b.flip());
                        }
                    }
                    where.put(-1L);
                    full.put(END);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            reader.setDaemon(true);
            reader.start();
            for (ByteBuffer b; (b = full.take()) != END; free.put(b)) {
                long at = where.take();
                while (b.hasRemaining()) {
                    out.write(b, at + b.position());
                }
            }
        }
    }
}
