package imago.cli.io;

import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
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
 * qemu-io's {@code write}: writes a pattern, a file's bytes or zeroes to a range.
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
        long offset = cvtnum(ops.get(0));
        if (offset < 0) {
            printCvtnumErr(offset, ops.get(0));
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
            // the VM state area (qcow2 keeps it past the virtual disk): imago has no access to it
            out.println("write failed: Operation not supported");
            return ENOTSUP;
        }
        if (!inRange(offset, count)) {
            out.println("write failed: Input/output error");
            return EIO;
        }
        if (compressed && !zflag) {
            return writeCompressed(offset, count, pattern, source, qflag, machine);
        }

        long t0 = System.nanoTime();
        try {
            if (zflag) {
                Set<ZeroFlag> flags = EnumSet.noneOf(ZeroFlag.class);
                if (unmap) {
                    flags.add(ZeroFlag.MAY_UNMAP);
                }
                if (noFallback) {
                    flags.add(ZeroFlag.NO_FALLBACK);
                }
                if (count > 0) {
                    image().writeZeroes(offset, count, flags);
                }
            } else {
                int chunk = (int) Math.min(count, IO_CHUNK);
                ByteBuffer buf = source == null ? filled(chunk, pattern) : ByteBuffer.allocateDirect(Math.max(chunk, 1));
                for (long done = 0; done < count; ) {
                    int n = (int) Math.min(chunk, count - done);
                    if (source != null) {
                        buf.clear();
                        for (int i = 0; i < n; ) {
                            int phase = (int) ((done + i) % source.length);
                            int len = Math.min(n - i, source.length - phase);
                            buf.put(source, phase, len);
                            i += len;
                        }
                        buf.flip();
                    } else {
                        buf.clear().limit(n);
                    }
                    image().write(buf, offset + done);
                    done += n;
                }
            }
            if (fua) {
                image().flush();
            }
        } catch (IllegalArgumentException e) {
            out.println("write failed: Input/output error");
            return EIO;
        } catch (UnsupportedFeatureException e) {
            out.println("write failed: Operation not supported");
            return ENOTSUP;
        } catch (IOException e) {
            out.println("write failed: " + describe.apply(e));
            return EIO;
        }
        long elapsed = System.nanoTime() - t0;
        if (!qflag) {
            report("wrote", elapsed, offset, count, count, 1, machine);
        }
        return 0;
    }

    /**
     * {@code write -c}: whole clusters (the last may end at the end of the image), each written compressed, as
     * QEMU's compressed writes; a cluster already allocated fails the write with EIO.
     */
    private int writeCompressed(long offset, long count, int pattern, byte[] source, boolean qflag, boolean machine)
            throws IOException {
        if (!image().supports(Feature.COMPRESSED_WRITES)) {
            out.println("write failed: Operation not supported");
            return ENOTSUP;
        }
        long cluster = image().info().clusterSize().orElse(512);
        long size = image().size();
        if (offset % cluster != 0 || (count % cluster != 0 && offset + count != size)) {
            out.println("write failed: Invalid argument");
            return EINVAL;
        }
        long t0 = System.nanoTime();
        try {
            ByteBuffer buf = ByteBuffer.allocateDirect((int) Math.max(1, Math.min(cluster, count)));
            for (long done = 0; done < count; ) {
                int n = (int) Math.min(cluster, count - done);
                buf.clear().limit(n);
                for (int i = 0; i < n; i++) {
                    buf.put(i, source == null ? (byte) pattern : source[(int) ((done + i) % source.length)]);
                }
                image().writeCompressed(buf, offset + done);
                done += n;
            }
        } catch (UnsupportedFeatureException e) {
            out.println("write failed: Operation not supported");
            return ENOTSUP;
        } catch (IllegalArgumentException e) {
            out.println("write failed: Invalid argument");
            return EINVAL;
        } catch (IOException e) {
            // QEMU's compressed writes go only to unallocated clusters and fail others with EIO
            out.println("write failed: Input/output error");
            return EIO;
        }
        long elapsed = System.nanoTime() - t0;
        if (!qflag) {
            report("wrote", elapsed, offset, count, count, 1, machine);
        }
        return 0;
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
