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
    static final int EBUSY = -16;
    static final int EFBIG = -27;
    static final int EINVAL = -22;
    static final int ERANGE = -34;
    static final int ENOTSUP = -95;

    /** QEMU's {@code BDRV_REQUEST_MAX_BYTES}: the largest single request. */
    static final long REQUEST_MAX_BYTES = ((long) Integer.MAX_VALUE >> 9) << 9;
    /** Bytes moved per call to the image for long requests. */
    static final int IO_CHUNK = 4 << 20;

    private final IoState state;
    /** What this command set was made from, for a copy that prints elsewhere. */
    final Context context;
    final PrintStream out;
    final PrintStream err;
    final Function<Throwable, String> describe;
    /** The command table, for usage lines. */
    final Map<String, Cmd> commands;
    /** The name messages start with. */
    final String program;

    /**
     * What {@link QemuIo} hands its commands.
     *
     * @param program the name messages start with, the one the command was invoked by
     * @param state the open image, if any
     * @param out standard output, where qemu-io prints results and most errors
     * @param err standard error, for the messages qemu-io prints there
     * @param describe the message (without the program name) for a failure of the library
     * @param commands the command table, for usage lines
     */
    record Context(String program, IoState state, PrintStream out, PrintStream err,
            Function<Throwable, String> describe, Map<String, Cmd> commands) {

        /** This context with standard output sent to {@code sink}. */
        Context withOut(PrintStream sink) {
            return new Context(program, state, sink, err, describe, commands);
        }
    }

    IoCommands(Context context) {
        this.context = context;
        this.state = context.state();
        this.out = context.out();
        this.err = context.err();
        this.describe = context.describe();
        this.commands = context.commands();
        this.program = context.program();
    }

    /** The open image (commands other than those that need none run only while one is). */
    final Image image() {
        return state.image();
    }

    /** What the options the image was opened with change in how the commands run. */
    final IoOptions options() {
        return state.options();
    }

    final IoState state() {
        return state;
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

    /** A size operand, as qemu-io's {@code cvtnum} reads it, or its negative errno once qemu-io's message is printed. */
    final long size(String arg) {
        long value = cvtnum(arg);
        if (value < 0) {
            printCvtnumErr(value, arg);
        }
        return value;
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
        long size = image().size();
        return offset <= size && size - offset >= count;
    }

    /**
     * Whether a VM state request ({@code read -b}, {@code write -b}) of {@code count} bytes at {@code offset} passes
     * QEMU's request check (bdrv_check_qiov_request, before the format is asked): it must end within
     * {@code BDRV_MAX_LENGTH}, else qemu-io fails it with EIO.
     */
    static boolean vmStateRange(long offset, long count) {
        return offset <= MAX_LENGTH && count <= MAX_LENGTH - offset;
    }

    /** QEMU's {@code BDRV_MAX_LENGTH}: the largest offset a request may reach (INT64_MAX down to 1 GiB). */
    static final long MAX_LENGTH = Long.MAX_VALUE & -(1L << 30);

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

    /** qemu-io's {@code print_report}, for humans. */
    final void report(String op, long nanos, long offset, long count, long total, int ops) {
        report(op, nanos, offset, count, total, ops, false);
    }

    /**
     * qemu-io's {@code print_report}: two lines for humans, or with {@code machine} ({@code -C}) one line of
     * {@code bytes,ops,time,bytes/sec,ops/sec}.
     */
    final void report(String op, long nanos, long offset, long count, long total, int ops, boolean machine) {
        long ns = Math.max(nanos, 1);
        double seconds = ns / 1e9;
        if (machine) {
            out.println(total + "," + ops + "," + time(ns, true) + "," + String.format(Locale.ROOT, "%.3f,%.3f",
                    total / seconds, ops / seconds));
            return;
        }
        out.println(op + " " + total + "/" + count + " bytes at offset " + offset);
        out.println(Sizes.ioUnits(total) + ", " + ops + " ops; " + time(ns, false) + " ("
                + Sizes.ioUnits(total / seconds) + "/sec and " + String.format(Locale.ROOT, "%.4f", ops / seconds)
                + " ops/sec)");
    }

    /**
     * qemu-io's {@code timestr}: {@code 00.12 sec} below a second, else {@code H:MM:SS.ss}; always the latter when
     * {@code fixed} (the machine-readable form).
     */
    static String time(long nanos, boolean fixed) {
        long secs = nanos / 1_000_000_000L;
        double frac = (nanos % 1_000_000_000L) / 1e9;
        if (secs == 0 && !fixed) {
            return String.format(Locale.ROOT, "%05.2f sec", frac);
        }
        return String.format(Locale.ROOT, "%d:%02d:%05.2f", secs / 3600, (secs / 60) % 60, (secs % 60) + frac);
    }

    /** qemu-io's {@code dump_buffer}: 16 bytes a line, printable only if alphanumeric. */
    final void dump(byte[] buffer, long offset) {
        StringBuilder sb = new StringBuilder(80);
        for (int i = 0; i < buffer.length; i += 16) {
            sb.setLength(0);
            sb.append(String.format(Locale.ROOT, "%08x:  ", offset + i));
            int end = Math.min(buffer.length, i + 16);
            for (int j = i; j < end; j++) {
                sb.append(Character.forDigit((buffer[j] >> 4) & 0xf, 16)).append(Character.forDigit(buffer[j] & 0xf, 16))
                        .append(' ');
            }
            sb.append(' ');
            for (int j = i; j < end; j++) {
                int c = buffer[j] & 0xff;
                boolean alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
                sb.append(alnum ? (char) c : '.');
            }
            out.println(sb);
        }
    }

    /** qemu-io's check of a VM state or compressed request: whole 512-byte sectors, else a message. */
    final boolean sectorAligned(long offset, long count) {
        if (offset % 512 != 0) {
            out.println(offset + " is not a sector-aligned value for 'offset'");
            return false;
        }
        if (count % 512 != 0) {
            out.println(count + " is not a sector-aligned value for 'count'");
            return false;
        }
        return true;
    }
}
