package imago.cli.io;

import imago.api.Image;
import imago.cli.text.Sizes;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * What qemu-io's commands share: the open image and the output streams, qemu-io's argument helpers
 * ({@code cvtnum}, pattern bytes, usage lines) and its statistics report, with qemu-io's messages.
 */
abstract class IoCommands {
    // qemu-io's command functions return 0 or one of these negative errno values
    static final int EPERM = -1;
    static final int EIO = -5;
    static final int EINVAL = -22;
    static final int ERANGE = -34;
    static final int ENOTSUP = -95;

    /** QEMU's {@code BDRV_REQUEST_MAX_BYTES}: the largest single request. */
    static final long REQUEST_MAX_BYTES = ((long) Integer.MAX_VALUE >> 9) << 9;
    /** Bytes moved per call to the image for long requests. */
    static final int IO_CHUNK = 4 << 20;

    final Image image;
    final PrintStream out;
    final PrintStream err;
    final Function<Throwable, String> describe;
    /** The command table, for usage lines. */
    final Map<String, Cmd> commands;
    final IoOptions options;
    /** The name messages start with. */
    final String program;

    /**
     * What {@link QemuIo} hands its commands.
     *
     * @param program the name messages start with, the one the command was invoked by
     * @param image the open image
     * @param out standard output, where qemu-io prints results and most errors
     * @param err standard error, for the messages qemu-io prints there
     * @param describe the message (without the program name) for a failure of the library
     * @param commands the command table, for usage lines
     * @param options what qemu-io's global options change
     */
    record Context(String program, Image image, PrintStream out, PrintStream err, Function<Throwable, String> describe,
            Map<String, Cmd> commands, IoOptions options) {
    }

    IoCommands(Context context) {
        this.image = context.image();
        this.out = context.out();
        this.err = context.err();
        this.describe = context.describe();
        this.commands = context.commands();
        this.options = context.options();
        this.program = context.program();
    }

    /** qemu-io's usage line for {@code cmd}. */
    final void usage(Cmd cmd) {
        out.println(cmd.name() + " " + cmd.args() + " -- " + cmd.oneLine());
    }

    /** qemu-io's {@code cvtnum}: a size, or a negative errno. */
    static long cvtnum(String s) {
        try {
            return Sizes.parse(s);
        } catch (Sizes.SizeException e) {
            return e.problem() == Sizes.Problem.TOO_LARGE ? ERANGE : EINVAL;
        }
    }

    final void printCvtnumErr(long rc, String arg) {
        if (rc == EINVAL) {
            out.println("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- " + arg);
        } else if (rc == ERANGE) {
            out.println("Parsing error: argument too large -- " + arg);
        } else {
            out.println("Parsing error: " + arg);
        }
    }

    /** qemu-io's {@code parse_pattern}: {@code strtol(arg, &end, 0)} in 0..255, or -1 after a message. */
    final int parsePattern(String arg) {
        long v = -1;
        try {
            String s = arg.strip();
            boolean negative = s.startsWith("-");
            if (negative || s.startsWith("+")) {
                s = s.substring(1);
            }
            if (s.startsWith("0x") || s.startsWith("0X")) {
                v = Long.parseLong(s.substring(2), 16);
            } else if (s.length() > 1 && s.startsWith("0")) {
                v = Long.parseLong(s.substring(1), 8);
            } else {
                v = Long.parseLong(s, 10);
            }
            if (negative) {
                v = -v;
            }
        } catch (NumberFormatException e) {
            v = -1;
        }
        if (v < 0 || v > 255) {
            out.println(arg + " is not a valid pattern byte");
            return -1;
        }
        return (int) v;
    }

    /** Whether {@code offset + count} lies within the image. */
    final boolean inRange(long offset, long count) throws IOException {
        long size = image.size();
        return offset <= size && size - offset >= count;
    }

    /** A direct buffer of {@code length} bytes of {@code pattern}. */
    static ByteBuffer filled(int length, int pattern) {
        ByteBuffer b = ByteBuffer.allocateDirect(Math.max(length, 1));
        byte[] row = new byte[Math.min(Math.max(length, 1), 64 << 10)];
        Arrays.fill(row, (byte) pattern);
        while (b.hasRemaining()) {
            b.put(row, 0, Math.min(row.length, b.remaining()));
        }
        return b.clear().limit(length);
    }

    /** qemu-io's {@code print_report}. */
    final void report(String op, long nanos, long offset, long count, long total, int ops) {
        long ns = Math.max(nanos, 1);
        double seconds = ns / 1e9;
        out.println(op + " " + total + "/" + count + " bytes at offset " + offset);
        out.println(Sizes.ioUnits(total) + ", " + ops + " ops; " + time(ns) + " (" + Sizes.ioUnits(total / seconds)
                + "/sec and " + String.format(Locale.ROOT, "%.4f", ops / seconds) + " ops/sec)");
    }

    /** qemu-io's {@code timestr}: {@code 00.12 sec} below a second, else {@code H:MM:SS.ss}. */
    static String time(long nanos) {
        long secs = nanos / 1_000_000_000L;
        double frac = (nanos % 1_000_000_000L) / 1e9;
        if (secs == 0) {
            return String.format(Locale.ROOT, "%05.2f sec", frac);
        }
        return String.format(Locale.ROOT, "%d:%02d:%05.2f", secs / 3600, (secs / 60) % 60, (secs % 60) + frac);
    }
}
