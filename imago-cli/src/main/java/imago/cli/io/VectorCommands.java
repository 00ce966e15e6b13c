package imago.cli.io;

import imago.api.Feature;
import imago.api.Image;
import imago.api.UnsupportedFeatureException;
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
        return request(name, argv, false, false);
    }

    /** qemu-io's {@code aio_read}. */
    int aioRead(String name, List<String> argv) throws IOException {
        return request(name, argv, false, true);
    }

    /** qemu-io's {@code writev}. */
    int writev(String name, List<String> argv) throws IOException {
        return request(name, argv, true, false);
    }

    /** qemu-io's {@code aio_write}. */
    int aioWrite(String name, List<String> argv) throws IOException {
        return request(name, argv, true, true);
    }

    /** qemu-io's {@code aio_flush}: waits for the requests in flight; what is cached stays so, as in qemu-io. */
    int aioFlush(String name, List<String> argv) {
        state().drain();
        return 0;
    }

    /**
     * One of the four commands: its options (each command takes its own letters, qemu-io's), its offset and
     * buffer lengths, then the request, run now ({@code readv}, {@code writev}) or kept for its completion.
     */
    private int request(String name, List<String> argv, boolean write, boolean async) throws IOException {
        String letters = write ? (async ? "CfiqP:uz" : "CfqP:") : (async ? "CP:iqv" : "CqvP:");
        GetOpt g = new GetOpt(name, argv, letters, err);
        boolean machine = false;
        boolean fua = false;
        boolean pflag = false;
        boolean qflag = false;
        boolean unmap = false;
        boolean vflag = false;
        boolean zflag = false;
        int pattern = write ? 0xcd : 0;
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            switch (c) {
                case 'C' -> machine = true;
                case 'f' -> fua = true;
                case 'q' -> qflag = true;
                case 'u' -> unmap = true;
                case 'v' -> vflag = true;
                case 'z' -> zflag = true;
                case 'P' -> {
                    pflag = true;
                    pattern = parsePattern(g.optarg());
                    if (pattern < 0) {
                        return EINVAL;
                    }
                }
                case 'i' -> {
                    out.println("injecting invalid " + (write ? "write" : "read") + " request");
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
        long offset = size(ops.getFirst());
        if (offset < 0) {
            return (int) offset;
        }
        long count;
        if (zflag) {
            if (ops.size() != 2) {
                out.println("-z supports only a single length parameter");
                return EINVAL;
            }
            count = size(ops.get(1));
            if (count < 0) {
                return (int) count;
            }
        } else {
            count = totalLength(ops.subList(1, ops.size()));
            if (count < 0) {
                return EINVAL;
            }
        }
        Request r = new Request(write, offset, count, pflag && !write, pattern, qflag, vflag, machine, zflag, unmap,
                fua, System.nanoTime());
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

    /**
     * A request, as its command asked for it: a read ({@code verify}: check the data against {@code pattern};
     * {@code dump}: print it) or a write of {@code pattern} or, with {@code zeroes}, of zeroes.
     */
    private record Request(boolean write, long offset, long count, boolean verify, int pattern, boolean quiet,
            boolean dump, boolean machine, boolean zeroes, boolean unmap, boolean fua, long submitted) {
    }

    /**
     * Runs a request and prints what qemu-io prints when it completes; returns the command's result (an asynchronous
     * one that fails or finds other data than its pattern still succeeds: it was submitted).
     */
    private int complete(Image image, Request r, boolean async) throws IOException {
        String failure = !r.write() ? "readv failed: " : async ? "aio_write failed: " : "writev failed: ";
        int failed = async ? 0 : EIO;
        long offset = r.offset();
        long count = r.count();
        if (offset > image.size() || image.size() - offset < count) {
            out.println(failure + "Input/output error");
            return failed;
        }
        byte[] data = r.write() ? null : new byte[(int) count];
        try {
            if (!r.write()) {
                image.read(ByteBuffer.wrap(data), offset);
                if (options().copyOnRead()) {
                    new CopyOnRead(image, image.info().clusterSize().orElse(512)).copy(offset, count);
                }
            } else if (r.zeroes()) {
                Set<ZeroFlag> flags = r.unmap() ? EnumSet.of(ZeroFlag.MAY_UNMAP) : EnumSet.noneOf(ZeroFlag.class);
                if (count > 0) {
                    image.writeZeroes(offset, count, flags);
                }
            } else {
                for (long done = 0; done < count; ) {
                    int n = (int) Math.min(IO_CHUNK, count - done);
                    image.write(filled(n, r.pattern()), offset + done);
                    done += n;
                }
            }
            if (r.fua()) {
                image.flush();
            }
        } catch (IllegalArgumentException e) {
            out.println(failure + "Input/output error");
            return failed;
        } catch (UnsupportedFeatureException e) {
            if (e.feature() != Feature.OVERWRITES) {
                out.println(failure + describe.apply(e));
            } else if (String.valueOf(e.getMessage()).contains(WriteCommand.ALLOCATED_STREAM_CLUSTER)) {
                // a vmdk stream's cluster written already: QEMU's vmdk message, then EIO
                out.flush();
                err.println(program + ": " + WriteCommand.ALLOCATED_STREAM_CLUSTER);
                out.println(failure + "Input/output error");
            } else {
                out.println(failure + "Invalid argument"); // a part of a vmdk stream's cluster
            }
            return failed;
        } catch (IOException e) {
            out.println(failure + describe.apply(e));
            return failed;
        }
        long elapsed = System.nanoTime() - r.submitted();
        int ret = 0;
        if (r.verify() && !allEqual(data, r.pattern())) {
            out.println("Pattern verification failed at offset " + offset + ", " + count + " bytes");
            ret = async ? 0 : EINVAL;
        }
        if (r.quiet()) {
            return ret;
        }
        if (r.dump()) {
            dump(data, offset);
        }
        report(r.write() ? "wrote" : "read", elapsed, offset, count, count, 1, r.machine());
        return ret;
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
