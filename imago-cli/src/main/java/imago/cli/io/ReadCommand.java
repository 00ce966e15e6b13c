package imago.cli.io;

import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * qemu-io's {@code read}: reads a range, optionally checks it against a pattern and dumps it; with {@code -b} from
 * the VM state area ({@link imago.api.Image#vmState()}).
 */
final class ReadCommand extends IoCommands {

    private CopyOnRead copyOnRead;
    private imago.api.Image copyOnReadImage;

    ReadCommand(Context context) {
        super(context);
    }

    /** The copy-on-read of {@code -C}, made on first use (it asks the image for its cluster size). */
    private CopyOnRead copyOnRead() throws IOException {
        if (copyOnReadImage != image()) { // another image was opened since
            copyOnReadImage = image();
            copyOnRead = new CopyOnRead(image(), image().info().clusterSize().orElse(512));
        }
        return copyOnRead;
    }

    /** qemu-io's {@code read}. */
    int read(String name, List<String> argv) throws IOException {
        GetOpt g = new GetOpt(name, argv, "bCpqvP:s:l:", err);
        boolean bflag = false;
        boolean machine = false;
        boolean lflag = false;
        boolean pflag = false;
        boolean sflag = false;
        boolean vflag = false;
        boolean qflag = false;
        long patternCount = 0;
        long patternOffset = 0;
        int pattern = 0;
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            switch (c) {
                case 'b' -> bflag = true;
                case 'C' -> machine = true;
                case 'p' -> { }
                case 'q' -> qflag = true;
                case 'v' -> vflag = true;
                case 'l' -> {
                    lflag = true;
                    patternCount = size(g.optarg());
                    if (patternCount < 0) {
                        return (int) patternCount;
                    }
                }
                case 'P' -> {
                    pflag = true;
                    pattern = parsePattern(g.optarg());
                    if (pattern < 0) {
                        return EINVAL;
                    }
                }
                case 's' -> {
                    sflag = true;
                    patternOffset = size(g.optarg());
                    if (patternOffset < 0) {
                        return (int) patternOffset;
                    }
                }
                default -> {
                    usage(commands.get("read"));
                    return EINVAL;
                }
            }
        }
        List<String> ops = g.operands();
        if (ops.size() != 2) {
            usage(commands.get("read"));
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
        } else if (count > REQUEST_MAX_BYTES) {
            out.println("length cannot exceed " + REQUEST_MAX_BYTES + ", given " + ops.get(1));
            return EINVAL;
        }
        if (bflag && !sectorAligned(offset, count)) {
            return EINVAL;
        }
        if (!pflag && (lflag || sflag)) {
            usage(commands.get("read"));
            return EINVAL;
        }
        if (!lflag) {
            patternCount = count - patternOffset;
        }
        if (patternCount < 0 || patternCount + patternOffset > count) {
            out.println("pattern verification range exceeds end of read data");
            return EINVAL;
        }
        if (bflag ? !vmStateRange(offset, count) : !inRange(offset, count)) {
            out.println("read failed: Input/output error");
            return EIO;
        }

        byte[] all = vflag ? new byte[(int) count] : null;
        boolean mismatch = false;
        long t0 = System.nanoTime();
        try {
            int chunk = (int) Math.min(count, IO_CHUNK);
            ByteBuffer buf = ByteBuffer.allocateDirect(Math.max(chunk, 1));
            ByteBuffer expected = pflag ? filled(chunk, pattern) : null;
            if (bflag && count == 0) {
                image().vmState().read(buf.limit(0), offset); // still refused by a format without the area
            }
            for (long done = 0; done < count; ) {
                int n = (int) Math.min(chunk, count - done);
                buf.clear().limit(n);
                if (bflag) {
                    image().vmState().read(buf, offset + done);
                } else {
                    image().read(buf, offset + done);
                }
                buf.flip();
                if (pflag && !mismatch) {
                    long from = Math.max(done, patternOffset);
                    long to = Math.min(done + n, patternOffset + patternCount);
                    if (from < to) {
                        int len = (int) (to - from);
                        mismatch = buf.slice((int) (from - done), len).mismatch(expected.slice(0, len)) >= 0;
                    }
                }
                if (all != null) {
                    buf.get(0, all, (int) done, n);
                }
                done += n;
            }
            if (options().copyOnRead() && !bflag) {
                copyOnRead().copy(offset, count);
            }
        } catch (IllegalArgumentException e) {
            out.println("read failed: Input/output error");
            return EIO;
        } catch (UnsupportedFeatureException e) {
            if (bflag && e.feature() == Feature.VM_STATE) { // raw, vmdk, ...: qemu-io's ENOTSUP
                out.println("read failed: Operation not supported");
                return ENOTSUP;
            }
            out.println("read failed: " + describe.apply(e));
            return EIO;
        } catch (IOException e) {
            if (imago.cli.convert.ReadFailure.invalidArgument(e)) {
                out.println("read failed: Invalid argument"); // damage QEMU's driver meets with EINVAL
                return EINVAL;
            }
            out.println("read failed: " + describe.apply(e));
            return EIO;
        }
        long elapsed = System.nanoTime() - t0;
        int ret = 0;
        if (mismatch) {
            out.println("Pattern verification failed at offset " + (offset + patternOffset) + ", " + patternCount
                    + " bytes");
            ret = EINVAL;
        }
        if (qflag) {
            return ret;
        }
        if (vflag) {
            dump(all, offset);
        }
        report("read", elapsed, offset, count, count, 1, machine);
        return ret;
    }
}
