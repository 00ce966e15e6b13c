package imago.cli.io;

import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.util.List;

/**
 * qemu-io's commands that change the image other than by writing data: {@code discard}, {@code flush},
 * {@code truncate}.
 */
final class ImageCommands extends IoCommands {

    ImageCommands(Context context) {
        super(context);
    }

    /** qemu-io's {@code discard}. */
    int discard(String name, List<String> argv) throws IOException {
        GetOpt g = new GetOpt(name, argv, "Cq", err);
        boolean qflag = false;
        boolean machine = false;
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            if (c == 'q') {
                qflag = true;
            } else if (c == 'C') {
                machine = true;
            } else {
                usage(commands.get("discard"));
                return EINVAL;
            }
        }
        List<String> ops = g.operands();
        if (ops.size() != 2) {
            usage(commands.get("discard"));
            return EINVAL;
        }
        long offset = size(ops.get(0));
        if (offset < 0) {
            return (int) offset;
        }
        long bytes = cvtnum(ops.get(1));
        if (bytes < 0) {
            printCvtnumErr(bytes, ops.get(1));
            return (int) bytes;
        } else if (bytes > REQUEST_MAX_BYTES) {
            out.println("length cannot exceed " + REQUEST_MAX_BYTES + ", given " + ops.get(1));
            return EINVAL;
        }
        if (!inRange(offset, bytes)) {
            out.println("discard failed: Input/output error");
            return EIO;
        }
        long t0 = System.nanoTime();
        try {
            if (bytes > 0 && options().unmap()) {
                image().discard(offset, bytes);
            }
        } catch (IllegalArgumentException e) {
            out.println("discard failed: Input/output error");
            return EIO;
        } catch (IOException e) {
            out.println("discard failed: " + describe.apply(e));
            return EIO;
        }
        long elapsed = System.nanoTime() - t0;
        if (!qflag) {
            report("discard", elapsed, offset, bytes, bytes, 1, machine);
        }
        return 0;
    }

    /** qemu-io's {@code flush}. */
    int flush(String name, List<String> argv) throws IOException {
        image().flush();
        return 0;
    }

    /** qemu-io's {@code truncate}. */
    int truncate(String name, List<String> argv) throws IOException {
        GetOpt g = new GetOpt(name, argv, "m:", err);
        Preallocation prealloc = Preallocation.OFF;
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            if (c == 'm') {
                try {
                    prealloc = Preallocation.parse(g.optarg());
                } catch (IllegalArgumentException e) {
                    out.flush();
                    err.println(program + ": Invalid preallocation mode '" + g.optarg() + "'");
                    return EINVAL;
                }
            } else {
                usage(commands.get("truncate"));
                return EINVAL;
            }
        }
        List<String> ops = g.operands();
        if (ops.size() != 1) {
            usage(commands.get("truncate"));
            return EINVAL;
        }
        long size = size(ops.getFirst());
        if (size < 0) {
            return (int) size;
        }
        try {
            image().resize(size, prealloc);
        } catch (UnsupportedFeatureException e) {
            out.flush();
            err.println(program + ": Image format driver does not support resize");
            return ENOTSUP;
        }
        return 0;
    }
}
