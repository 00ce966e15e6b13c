package imago.cli.io;

import imago.api.Extent;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.api.VmState;
import imago.api.ZeroFlag;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * qemu-io's {@code write}: writes a pattern, a file's bytes or zeroes to a range; with {@code -b} into the VM state
 * area.
 */
final class WriteCommand extends IoCommands {

    WriteCommand(Context context) {
        super(context);
    }

    /** qemu-io's {@code write}. */
    int write(String name, List<String> argv) throws IOException {
        GetOpt g = new GetOpt(name, argv, "bcCfnpquzP:s:", err);
        boolean bflag = false;
        boolean compressed = false;
        boolean machine = false;
        boolean pflag = false;
        boolean sflag = false;
        boolean zflag = false;
        boolean qflag = false;
        boolean fua = false;
        boolean unmap = false;
        boolean noFallback = false;
        int pattern = 0xcd;
        String sourceFile = null;
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            switch (c) {
                case 'b' -> bflag = true;
                case 'c' -> compressed = true;
                case 'C' -> machine = true;
                case 'f' -> fua = true;
                case 'n' -> noFallback = true;
                case 'p' -> { }
                case 'q' -> qflag = true;
                case 'u' -> unmap = true;
                case 'z' -> zflag = true;
                case 'P' -> {
                    pflag = true;
                    pattern = parsePattern(g.optarg());
                    if (pattern < 0) {
                        return EINVAL;
                    }
                }
                case 's' -> {
                    sflag = true;
                    sourceFile = g.optarg();
                }
                default -> {
                    usage(commands.get("write"));
                    return EINVAL;
                }
            }
        }
        List<String> ops = g.operands();
        if (ops.size() != 2) {
            usage(commands.get("write"));
            return EINVAL;
        }
        if (bflag && zflag) {
            out.println("-b and -z cannot be specified at the same time");
            return EINVAL;
        }
        if (fua && (bflag || compressed)) {
            out.println("-f and -b or -c cannot be specified at the same time");
            return EINVAL;
        }
        if (unmap && !zflag) {
            out.println("-u requires -z to be specified");
            return EINVAL;
        }
        if (noFallback && !zflag) {
            out.println("-n requires -z to be specified");
            return EINVAL;
        }
        if ((zflag ? 1 : 0) + (pflag ? 1 : 0) + (sflag ? 1 : 0) > 1) {
            out.println("Only one of -z, -P, and -s can be specified at the same time");
            return EINVAL;
        }
        long offset = size(ops.get(0));
        if (offset < 0) {
            return (int) offset;
        }
        long count = cvtnum(ops.get(1));
        if (count < 0) {
            printCvtnumErr(count, ops.get(1));
            return (int) count;
        } else if (count > REQUEST_MAX_BYTES && !noFallback) {
            out.println("length cannot exceed " + REQUEST_MAX_BYTES + " without -n, given " + ops.get(1));
            return EINVAL;
        }
        if ((bflag || compressed) && !sectorAligned(offset, count)) {
            return EINVAL;
        }
        byte[] source = null;
        if (sflag && !zflag) {
            source = loadPattern(sourceFile, count);
            if (source == null) {
                return EINVAL;
            }
        }
        if (bflag) {
            return vmStateRange(offset, count) ? writeVmState(offset, count, pattern, source, qflag, machine)
                    : failed(EIO);
        }
        if (!inRange(offset, count)) {
            return failed(EIO);
        }
        if (compressed && !zflag) {
            return writeCompressed(offset, count, pattern, source, qflag, machine);
        }
        if (!zflag && image().format().equals("vmdk")
                && VmdkExtent.of(image().info().formatSpecific()).stream().anyMatch(VmdkExtent::compressed)) {
            // QEMU's vmdk compresses whatever goes to a streamOptimized extent, with the rules of write -c
            return writeVmdk(offset, count, pattern, source, fua, qflag, machine);
        }

        boolean zeroes = zflag; // for the lambda: the options as parsed
        boolean mayUnmap = unmap;
        boolean exact = noFallback;
        boolean flush = fua;
        byte[] data = source;
        int fill = pattern;
        return timed(offset, count, qflag, machine, EIO, true, () -> {
            if (zeroes) {
                Set<ZeroFlag> flags = EnumSet.noneOf(ZeroFlag.class);
                if (mayUnmap) {
                    flags.add(ZeroFlag.MAY_UNMAP);
                }
                if (exact) {
                    flags.add(ZeroFlag.NO_FALLBACK);
                }
                if (count > 0) {
                    image().writeZeroes(offset, count, flags);
                }
            } else {
                writeData(offset, count, 0, fill, data);
            }
            if (flush) {
                image().flush();
            }
            return 0;
        });
    }

    /** Writes {@code count} bytes of the request from its byte {@code from} on, at {@code offset}, the ordinary way. */
    private void writeData(long offset, long count, long from, int pattern, byte[] source) throws IOException {
        writeData(image()::write, offset, count, from, pattern, source);
    }

    /** Where a write's bytes go: the guest disk or the VM state area. */
    @FunctionalInterface
    private interface Sink {
        void write(ByteBuffer src, long offset) throws IOException;
    }

    private static void writeData(Sink sink, long offset, long count, long from, int pattern, byte[] source)
            throws IOException {
        int chunk = (int) Math.min(count, IO_CHUNK);
        ByteBuffer buf = buffer(chunk, pattern, source);
        for (long done = 0; done < count; ) {
            int n = (int) Math.min(chunk, count - done);
            sink.write(next(buf, n, from + done, source), offset + done);
            done += n;
        }
    }

    /**
     * {@code write -b}: the bytes go to the VM state area ({@link imago.api.Image#vmState()}), as qemu-io's
     * {@code bdrv_save_vmstate}: a format without one fails with ENOTSUP, a qcow2 L1 table that would pass QEMU's limit
     * with EFBIG.
     */
    private int writeVmState(long offset, long count, int pattern, byte[] source, boolean qflag, boolean machine)
            throws IOException {
        VmState area = image().vmState();
        return timed(offset, count, qflag, machine, EIO, true, () -> {
            try {
                if (count == 0) {
                    area.write(ByteBuffer.allocate(0), offset); // still refused by a format without the area
                }
                writeData(area::write, offset, count, 0, pattern, source);
            } catch (ImageLimitException e) {
                return failed(EFBIG);
            }
            return 0;
        });
    }

    /** A buffer for up to {@code max} bytes of a request: filled with the pattern once, or for the source's bytes. */
    private static ByteBuffer buffer(int max, int pattern, byte[] source) {
        return source == null ? filled(max, pattern) : ByteBuffer.allocateDirect(Math.max(max, 1));
    }

    /**
     * {@code buf} ready to write {@code n} bytes of the request from its byte {@code at} on: the pattern (already in
     * it), or the source file's bytes repeated.
     */
    private static ByteBuffer next(ByteBuffer buf, int n, long at, byte[] source) {
        buf.clear();
        if (source == null) {
            return buf.limit(n);
        }
        for (int i = 0; i < n; ) {
            int phase = (int) ((at + i) % source.length);
            int len = Math.min(n - i, source.length - phase);
            buf.put(source, phase, len);
            i += len;
        }
        return buf.flip();
    }

    /** The data movement of a write: 0, or a negative errno once it printed qemu-io's message. */
    @FunctionalInterface
    private interface Transfer {
        int run() throws IOException;
    }

    /**
     * Runs a write's transfer and prints what qemu-io prints: the statistics, or the failure ({@code write failed:} and
     * the errno's words): a refused feature is ENOTSUP, a request the image takes as invalid {@code invalid}, another
     * failure EIO, with the library's words for it when {@code described}.
     */
    private int timed(long offset, long count, boolean quiet, boolean machine, int invalid, boolean described,
            Transfer transfer) throws IOException {
        long t0 = System.nanoTime();
        try {
            int ret = transfer.run();
            if (ret != 0) {
                return ret;
            }
        } catch (UnsupportedFeatureException e) {
            if (e.feature() == Feature.OVERWRITES) { // a vmdk stream's cluster: written, or a part of one
                return String.valueOf(e.getMessage()).contains(ALLOCATED_STREAM_CLUSTER) ? allocatedStreamCluster()
                        : failed(EINVAL);
            }
            return failed(ENOTSUP);
        } catch (IllegalArgumentException e) {
            return failed(invalid);
        } catch (IOException e) {
            if (!described) {
                return failed(EIO);
            }
            out.println("write failed: " + describe.apply(e));
            return EIO;
        }
        long elapsed = System.nanoTime() - t0;
        if (!quiet) {
            report("wrote", elapsed, offset, count, count, 1, machine);
        }
        return 0;
    }

    /** qemu-io's message for a write that failed with {@code errno}; returns it. */
    private int failed(int errno) {
        out.println("write failed: " + switch (errno) {
            case EINVAL -> "Invalid argument";
            case ENOTSUP -> "Operation not supported";
            case EFBIG -> "File too large";
            default -> "Input/output error";
        });
        return errno;
    }

    /**
     * {@code write -c}: whole clusters (the last may end at the end of the image), each written compressed, as
     * QEMU's compressed writes; a cluster already allocated fails the write with EIO.
     */
    private int writeCompressed(long offset, long count, int pattern, byte[] source, boolean qflag, boolean machine)
            throws IOException {
        if (image().format().equals("vmdk")) {
            return writeVmdk(offset, count, pattern, source, false, qflag, machine);
        }
        if (!image().supports(Feature.COMPRESSED_WRITES)) {
            return failed(ENOTSUP);
        }
        long cluster = image().info().clusterSize().orElse(512);
        long size = image().size();
        if (offset % cluster != 0 || (count % cluster != 0 && offset + count != size)) {
            return failed(EINVAL);
        }
        // QEMU's compressed writes go only to unallocated clusters and fail others with EIO
        return timed(offset, count, qflag, machine, EINVAL, false, () -> {
            ByteBuffer buf = buffer((int) Math.min(cluster, count), pattern, source);
            for (long done = 0; done < count; ) {
                int n = (int) Math.min(cluster, count - done);
                image().writeCompressed(next(buf, n, done, source), offset + done);
                done += n;
            }
            return 0;
        });
    }

    /**
     * {@code write -c} on vmdk, and any write to one with a streamOptimized extent, as QEMU's vmdk driver takes them:
     * a streamOptimized extent stores each cluster compressed (whole clusters only, or the last one of the extent; an
     * allocated cluster fails with EIO and QEMU's message on standard error); any other extent stores the bytes the
     * ordinary way, in any range.
     */
    private int writeVmdk(long offset, long count, int pattern, byte[] source, boolean fua, boolean qflag,
            boolean machine) throws IOException {
        List<VmdkExtent> extents = VmdkExtent.of(image().info().formatSpecific());
        return timed(offset, count, qflag, machine, EINVAL, true, () -> {
            for (long done = 0; done < count; ) {
                long pos = offset + done;
                VmdkExtent extent = extents.stream().filter(e -> e.contains(pos)).findFirst().orElse(null);
                if (extent == null) { // past the extents the descriptor lists
                    return failed(EIO);
                }
                long n;
                if (!extent.compressed()) {
                    n = Math.min(count - done, extent.end() - pos);
                    writeData(pos, n, done, pattern, source);
                } else {
                    long inCluster = (pos - extent.start()) % extent.clusterSize();
                    n = Math.min(count - done, extent.clusterSize() - inCluster);
                    // QEMU looks the cluster up first: written already is EIO, even for a part of it
                    Extent found = image().extent(pos - inCluster, 1);
                    if (found.depth() == 0 && found.present() && found.data()) {
                        return allocatedStreamCluster();
                    }
                    if (inCluster != 0 || n < extent.clusterSize() && pos + n != extent.end()) {
                        try {
                            // the driver refuses a part of a cluster, after taking a cluster's room as QEMU does
                            writeData(pos, n, done, pattern, source);
                        } catch (UnsupportedFeatureException e) {
                            return failed(EINVAL);
                        }
                        throw new IllegalStateException("the vmdk driver took a part of a compressed cluster");
                    }
                    try {
                        image().writeCompressed(next(buffer((int) n, pattern, source), (int) n, done, source), pos);
                    } catch (UnsupportedFeatureException e) {
                        if (String.valueOf(e.getMessage()).contains(ALLOCATED_STREAM_CLUSTER)) {
                            return allocatedStreamCluster(); // one the driver holds back, not yet in the file
                        }
                        throw e;
                    }
                }
                done += n;
            }
            if (fua) {
                image().flush();
            }
            return 0;
        });
    }

    /** QEMU's vmdk refusal of a write to a streamOptimized cluster already written: its message, then qemu-io's. */
    private int allocatedStreamCluster() {
        out.flush();
        err.println(program + ": " + ALLOCATED_STREAM_CLUSTER);
        return failed(EIO);
    }

    /** QEMU's vmdk refusal of a compressed write to a streamOptimized cluster already written (the driver's too). */
    static final String ALLOCATED_STREAM_CLUSTER = "Could not write to allocated cluster for streamOptimized";

    /** A vmdk extent as {@code info} lists it: where it starts, its size, and whether it stores clusters compressed. */
    private record VmdkExtent(long start, long size, boolean compressed, long clusterSize) {
        long end() {
            return start + size;
        }

        boolean contains(long offset) {
            return offset >= start && offset < end();
        }

        /** The extents of the vmdk whose format-specific information is {@code info}, in guest order. */
        static List<VmdkExtent> of(java.util.Map<String, Object> info) {
            List<VmdkExtent> extents = new java.util.ArrayList<>();
            long start = 0;
            if (info.get("extents") instanceof List<?> list) {
                for (Object o : list) {
                    if (o instanceof java.util.Map<?, ?> m && m.get("virtual-size") instanceof Number size) {
                        long cluster = m.get("cluster-size") instanceof Number c ? c.longValue() : 512;
                        extents.add(new VmdkExtent(start, size.longValue(), Boolean.TRUE.equals(m.get("compressed")),
                                cluster));
                        start += size.longValue();
                    }
                }
            }
            return extents;
        }
    }

    /** qemu-io's {@code qemu_io_alloc_from_file}: up to {@code count} bytes of the file, to be repeated. */
    private byte[] loadPattern(String file, long count) {
        byte[] data;
        try (var in = Files.newInputStream(Path.of(file))) {
            data = in.readNBytes((int) Math.min(count, Integer.MAX_VALUE - 8));
        } catch (NoSuchFileException e) {
            err.println(file + ": No such file or directory");
            return null;
        } catch (AccessDeniedException e) {
            err.println(file + ": Permission denied");
            return null;
        } catch (IOException | RuntimeException e) {
            err.println(file + ": " + (Files.isDirectory(Path.of(file)) ? "Is a directory" : e.getMessage()));
            return null;
        }
        if (data.length == 0) {
            err.println(file + ": file is empty");
            return null;
        }
        return data;
    }
}
