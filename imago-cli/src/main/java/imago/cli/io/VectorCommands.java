package imago.cli.io;

import imago.api.Image;
import imago.api.ZeroFlag;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * qemu-io's commands that move several buffers in one request ({@code readv}, {@code writev}) and their
 * asynchronous forms ({@code aio_read}, {@code aio_write}, {@code aio_flush}). An asynchronous request prints when
 * qemu-io would print its completion (see {@link IoState#completed}); as in qemu-io, one that fails or does not
 * match its pattern still counts as submitted, so its command succeeds.
 */
final class VectorCommands extends IoCommands {

    VectorCommands(Context context) {
        super(context);
    }

    /** qemu-io's {@code readv}. */
    int readv(String name, List<String> argv) throws IOException {
        return read(name, argv, false);
    }

    /** qemu-io's {@code aio_read}. */
    int aioRead(String name, List<String> argv) throws IOException {
        return read(name, argv, true);
    }

    /** qemu-io's {@code writev}. */
    int writev(String name, List<String> argv) throws IOException {
        return write(name, argv, false);
    }

    /** qemu-io's {@code aio_write}. */
    int aioWrite(String name, List<String> argv) throws IOException {
        return write(name, argv, true);
    }

    /** qemu-io's {@code aio_flush}: waits for the requests in flight; what is cached stays so, as in qemu-io. */
    int aioFlush(String name, List<String> argv) {
        state().drain();
        return 0;
    }

    private int read(String name, List<String> argv, boolean async) throws IOException {
        GetOpt g = new GetOpt(name, argv, async ? "CP:iqv" : "CqvP:", err);
        boolean machine = false;
        boolean pflag = false;
        boolean qflag = false;
        boolean vflag = false;
        int pattern = 0;
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            switch (c) {
                case 'C' -> machine = true;
                case 'q' -> qflag = true;
                case 'v' -> vflag = true;
                case 'P' -> {
                    pflag = true;
                    pattern = parsePattern(g.optarg());
                    if (pattern < 0) {
                        return EINVAL;
                    }
                }
                case 'i' -> {
                    out.println("injecting invalid read request");
                    return 0;
                }
                default -> {
                    usage(commands.get(name));
                    return EINVAL;
                }
            }
        }
        List<String> ops = g.operands();
        if (ops.size() < 2) {
            usage(commands.get(name));
            return EINVAL;
        }
        long offset = cvtnum(ops.getFirst());
        if (offset < 0) {
            printCvtnumErr(offset, ops.getFirst());
            return (int) offset;
        }
        long count = totalLength(ops.subList(1, ops.size()));
        if (count < 0) {
            return EINVAL;
        }
        ReadRequest r = new ReadRequest(offset, count, pflag, pattern, qflag, vflag, machine, System.nanoTime());
        if (async) {
            return later(v -> v.complete(image(), r, true));
        }
        return complete(image(), r, false);
    }

    /** A request run on a copy of these commands that prints into a buffer. */
    @FunctionalInterface
    private interface Completion {
        int run(VectorCommands printingElsewhere) throws IOException;
    }

    /** Runs an asynchronous request now and keeps what it prints for when qemu-io would print it; returns 0. */
    private int later(Completion request) throws IOException {
        var buffer = new java.io.ByteArrayOutputStream();
        var sink = new java.io.PrintStream(buffer, true, out.charset());
        request.run(new VectorCommands(context.withOut(sink)));
        sink.flush();
        state().completed(buffer.toString(out.charset()));
        return 0;
    }

    /** A read, as its command asked for it. */
    private record ReadRequest(long offset, long count, boolean pflag, int pattern, boolean qflag, boolean vflag,
            boolean machine, long submitted) {
    }

    /** Runs a read and prints what qemu-io prints when it completes; returns the command's result. */
    private int complete(Image image, ReadRequest r, boolean async) throws IOException {
        int failed = async ? 0 : EIO;
        long offset = r.offset();
        long count = r.count();
        if (offset > image.size() || image.size() - offset < count) {
            out.println("readv failed: Input/output error");
            return failed;
        }
        byte[] data = new byte[(int) count];
        try {
            image.read(ByteBuffer.wrap(data), offset);
            if (options().copyOnRead()) {
                new CopyOnRead(image, image.info().clusterSize().orElse(512)).copy(offset, count);
            }
        } catch (IllegalArgumentException e) {
            out.println("readv failed: Input/output error");
            return failed;
        } catch (IOException e) {
            out.println("readv failed: " + describe.apply(e));
            return failed;
        }
        long elapsed = System.nanoTime() - r.submitted();
        int ret = 0;
        if (r.pflag() && !allEqual(data, r.pattern())) {
            out.println("Pattern verification failed at offset " + offset + ", " + count + " bytes");
            ret = async ? 0 : EINVAL;
        }
        if (r.qflag()) {
            return ret;
        }
        if (r.vflag()) {
            dump(data, offset);
        }
        report("read", elapsed, offset, count, count, 1, r.machine());
        return ret;
    }

    private int write(String name, List<String> argv, boolean async) throws IOException {
        GetOpt g = new GetOpt(name, argv, async ? "CfiqP:uz" : "CfqP:", err);
        boolean machine = false;
        boolean fua = false;
        boolean qflag = false;
        boolean unmap = false;
        boolean zflag = false;
        int pattern = 0xcd;
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            switch (c) {
                case 'C' -> machine = true;
                case 'f' -> fua = true;
                case 'q' -> qflag = true;
                case 'u' -> unmap = true;
                case 'z' -> zflag = true;
                case 'P' -> {
                    pattern = parsePattern(g.optarg());
                    if (pattern < 0) {
                        return EINVAL;
                    }
                }
                case 'i' -> {
                    out.println("injecting invalid write request");
                    return 0;
                }
                default -> {
                    usage(commands.get(name));
                    return EINVAL;
                }
            }
        }
        List<String> ops = g.operands();
        if (ops.size() < 2) {
            usage(commands.get(name));
            return EINVAL;
        }
        if (unmap && !zflag) {
            out.println("-u requires -z to be specified");
            return EINVAL;
        }
        long offset = cvtnum(ops.getFirst());
        if (offset < 0) {
            printCvtnumErr(offset, ops.getFirst());
            return (int) offset;
        }
        long count;
        if (zflag) {
            if (ops.size() != 2) {
                out.println("-z supports only a single length parameter");
                return EINVAL;
            }
            count = cvtnum(ops.get(1));
            if (count < 0) {
                printCvtnumErr(count, ops.get(1));
                return (int) count;
            }
        } else {
            count = totalLength(ops.subList(1, ops.size()));
            if (count < 0) {
                return EINVAL;
            }
        }
        WriteRequest w = new WriteRequest(offset, count, zflag, unmap, fua, pattern, qflag, machine,
                System.nanoTime());
        if (async) {
            return later(v -> v.complete(image(), w, true));
        }
        return complete(image(), w, false);
    }

    /** A write, as its command asked for it. */
    private record WriteRequest(long offset, long count, boolean zflag, boolean unmap, boolean fua, int pattern,
            boolean qflag, boolean machine, long submitted) {
    }

    /** Runs a write and prints what qemu-io prints when it completes; returns the command's result. */
    private int complete(Image image, WriteRequest w, boolean async) throws IOException {
        String failure = async ? "aio_write failed: " : "writev failed: ";
        int failed = async ? 0 : EIO;
        long offset = w.offset();
        long count = w.count();
        if (offset > image.size() || image.size() - offset < count) {
            out.println(failure + "Input/output error");
            return failed;
        }
        try {
            if (w.zflag()) {
                Set<ZeroFlag> flags = w.unmap() ? EnumSet.of(ZeroFlag.MAY_UNMAP) : EnumSet.noneOf(ZeroFlag.class);
                if (count > 0) {
                    image.writeZeroes(offset, count, flags);
                }
            } else {
                for (long done = 0; done < count; ) {
                    int n = (int) Math.min(IO_CHUNK, count - done);
                    image.write(filled(n, w.pattern()), offset + done);
                    done += n;
                }
            }
            if (w.fua()) {
                image.flush();
            }
        } catch (IllegalArgumentException e) {
            out.println(failure + "Input/output error");
            return failed;
        } catch (IOException e) {
            out.println(failure + describe.apply(e));
            return failed;
        }
        long elapsed = System.nanoTime() - w.submitted();
        if (!w.qflag()) {
            report("wrote", elapsed, offset, count, count, 1, w.machine());
        }
        return 0;
    }

    /**
     * qemu-io's {@code create_iovec}: the sum of the buffer lengths, or -1 after the message for one that is not a
     * size or too large, or a sum that is.
     */
    private long totalLength(List<String> lengths) {
        long total = 0;
        for (String arg : lengths) {
            long len = cvtnum(arg);
            if (len < 0) {
                printCvtnumErr(len, arg);
                return -1;
            }
            if (len > REQUEST_MAX_BYTES) {
                out.println("Argument '" + arg + "' exceeds maximum size " + REQUEST_MAX_BYTES);
                return -1;
            }
            if (total > REQUEST_MAX_BYTES - len) {
                out.println("The total number of bytes exceed the maximum size " + REQUEST_MAX_BYTES);
                return -1;
            }
            total += len;
        }
        return total;
    }

    private static boolean allEqual(byte[] data, int pattern) {
        for (byte b : data) {
            if (b != (byte) pattern) {
                return false;
            }
        }
        return true;
    }
}
