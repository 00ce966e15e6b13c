package imago.cli.io;

import imago.api.Image;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import imago.cli.text.Sizes;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * qemu-io's command language over an open {@link Image}: {@code read}, {@code write}, {@code discard},
 * {@code flush}, {@code truncate}, {@code map}, {@code alloc}, {@code length}, {@code help} and
 * {@code quit}, with qemu-io's options, messages, statistics lines and hex dumps. A command that fails
 * does not stop the ones after it, but makes the exit status 1.
 */
public final class QemuIo {
    private static final int EPERM = -1;
    private static final int EIO = -5;
    private static final int EINVAL = -22;
    private static final int ERANGE = -34;
    private static final int ENOTSUP = -95;

    /** QEMU's {@code BDRV_REQUEST_MAX_BYTES}: the largest single request. */
    static final long REQUEST_MAX_BYTES = ((long) Integer.MAX_VALUE >> 9) << 9;
    /** Bytes moved per call to the image for long requests. */
    private static final int IO_CHUNK = 4 << 20;

    private final Image image;
    private final String fileName;
    private final PrintStream out;
    private final PrintStream err;
    private final Function<Throwable, String> describe;
    private final Map<String, Cmd> commands = new TreeMap<>();
    private boolean quit;

    /** One command: qemu-io's {@code cmdinfo_t}. */
    private record Cmd(String name, String altName, int argMin, int argMax, String args, String oneLine, String help,
            boolean writes, Handler handler) {
    }

    @FunctionalInterface
    private interface Handler {
        int run(String name, List<String> args) throws IOException;
    }

    /**
     * @param image the open image
     * @param fileName the image's name as the user typed it, for messages
     * @param out standard output, where qemu-io prints results and most errors
     * @param err standard error, for the messages qemu-io prints there
     * @param describe the message (without the program name) for a failure of the library
     */
    public QemuIo(Image image, String fileName, PrintStream out, PrintStream err,
            Function<Throwable, String> describe) {
        this.image = image;
        this.fileName = fileName;
        this.out = out;
        this.err = err;
        this.describe = describe;
        add(new Cmd("alloc", "a", 1, 2, "offset [count]", "checks if offset is allocated in the file", null, false,
                this::alloc));
        add(new Cmd("discard", "d", 2, -1, "[-q] off len", "discards a number of bytes at a specified offset",
                DISCARD_HELP, true, this::discard));
        add(new Cmd("flush", "f", 0, 0, null, "flush all in-core file state to disk", null, false, this::flush));
        add(new Cmd("help", "?", 0, 1, "[command]", "help for one or all commands", null, false, this::help));
        add(new Cmd("length", "l", 0, 0, null, "gets the length of the current file", null, false, this::length));
        add(new Cmd("map", null, 0, 0, "", "prints the allocated areas of a file", null, false, this::map));
        add(new Cmd("quit", "q", 0, 0, null, "exit the program", null, false, (n, a) -> {
            quit = true;
            return 0;
        }));
        add(new Cmd("read", "r", 2, -1, "[-pqv] [-P pattern [-s off] [-l len]] off len",
                "reads a number of bytes at a specified offset", READ_HELP, false, this::read));
        add(new Cmd("truncate", "t", 1, 3, "[-m prealloc_mode] off",
                "truncates the current file at the given offset", null, true, this::truncate));
        add(new Cmd("write", "w", 2, -1, "[-fnpquz] [-P pattern | -s source_file] off len",
                "writes a number of bytes at a specified offset", WRITE_HELP, true, this::write));
    }

    private void add(Cmd c) {
        commands.put(c.name(), c);
    }

    /** Runs each command in turn (until {@code quit}); returns the exit status: 1 if any failed, else 0. */
    public int run(List<String> commandLines) {
        int lastError = 0;
        for (String line : commandLines) {
            if (quit) {
                break;
            }
            int ret = execute(line);
            if (ret < 0) {
                lastError = ret;
            }
        }
        out.flush();
        return lastError < 0 ? 1 : 0;
    }

    /**
     * Reads commands from {@code in}, one per line, until its end or {@code quit}; returns the exit status.
     *
     * @throws IOException if {@code in} cannot be read
     */
    public int run(InputStream in) throws IOException {
        List<String> lines = new ArrayList<>();
        int lastError = 0;
        try (var reader = new java.io.BufferedReader(new java.io.InputStreamReader(in,
                java.nio.charset.Charset.defaultCharset()))) {
            String line;
            while (!quit && (line = reader.readLine()) != null) {
                lines.clear();
                lines.add(line);
                if (run(lines) != 0) {
                    lastError = 1;
                }
            }
        }
        return lastError;
    }

    /** Runs one command line; returns 0 or a negative errno, as qemu-io's command functions do. */
    int execute(String line) {
        List<String> argv = Arrays.stream(line.trim().split("[ \t\n]+")).filter(s -> !s.isEmpty()).toList();
        if (argv.isEmpty()) {
            return 0;
        }
        String name = argv.getFirst();
        Cmd cmd = find(name);
        if (cmd == null) {
            err.println("command \"" + name + "\" not found");
            return EINVAL;
        }
        int argc = argv.size() - 1;
        if (argc < cmd.argMin() || (cmd.argMax() != -1 && argc > cmd.argMax())) {
            if (cmd.argMax() == -1) {
                err.println("bad argument count " + argc + " to " + name + ", expected at least " + cmd.argMin()
                        + " arguments");
            } else if (cmd.argMin() == cmd.argMax()) {
                err.println("bad argument count " + argc + " to " + name + ", expected " + cmd.argMin()
                        + " arguments");
            } else {
                err.println("bad argument count " + argc + " to " + name + ", expected between " + cmd.argMin()
                        + " and " + cmd.argMax() + " arguments");
            }
            return EINVAL;
        }
        if (cmd.writes() && image.readOnly()) {
            out.flush();
            err.println("imago: " + fileName + ": the image is opened read-only (-r)");
            return EPERM;
        }
        try {
            return cmd.handler().run(name, argv.subList(1, argv.size()));
        } catch (IOException | RuntimeException e) {
            out.flush();
            err.println("imago: " + describe.apply(e));
            return EIO;
        } finally {
            out.flush();
        }
    }

    private Cmd find(String name) {
        for (Cmd c : commands.values()) {
            if (c.name().equals(name) || name.equals(c.altName())) {
                return c;
            }
        }
        return null;
    }

    private void usage(Cmd cmd) {
        out.println(cmd.name() + " " + cmd.args() + " -- " + cmd.oneLine());
    }

    // ------------------------------------------------------------------ numbers

    /** qemu-io's {@code cvtnum}: a size, or a negative errno. */
    static long cvtnum(String s) {
        try {
            return Sizes.parse(s);
        } catch (Sizes.SizeException e) {
            return e.problem() == Sizes.Problem.TOO_LARGE ? ERANGE : EINVAL;
        }
    }

    private void printCvtnumErr(long rc, String arg) {
        if (rc == EINVAL) {
            out.println("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- " + arg);
        } else if (rc == ERANGE) {
            out.println("Parsing error: argument too large -- " + arg);
        } else {
            out.println("Parsing error: " + arg);
        }
    }

    /** qemu-io's {@code parse_pattern}: {@code strtol(arg, &end, 0)} in 0..255, or -1 after a message. */
    private int parsePattern(String arg) {
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

    private boolean inRange(long offset, long count) throws IOException {
        long size = image.size();
        return offset <= size && size - offset >= count;
    }

    // ------------------------------------------------------------------ read

    private int read(String name, List<String> argv) throws IOException {
        GetOpt g = new GetOpt(name, argv, "pqvP:s:l:", err);
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
                case 'p' -> { }
                case 'q' -> qflag = true;
                case 'v' -> vflag = true;
                case 'l' -> {
                    lflag = true;
                    patternCount = cvtnum(g.optarg());
                    if (patternCount < 0) {
                        printCvtnumErr(patternCount, g.optarg());
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
                    patternOffset = cvtnum(g.optarg());
                    if (patternOffset < 0) {
                        printCvtnumErr(patternOffset, g.optarg());
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
        long offset = cvtnum(ops.get(0));
        if (offset < 0) {
            printCvtnumErr(offset, ops.get(0));
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
        if (!inRange(offset, count)) {
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
            for (long done = 0; done < count; ) {
                int n = (int) Math.min(chunk, count - done);
                buf.clear().limit(n);
                image.read(buf, offset + done);
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
        } catch (IllegalArgumentException e) {
            out.println("read failed: Input/output error");
            return EIO;
        } catch (IOException e) {
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
        report("read", elapsed, offset, count, count, 1);
        return ret;
    }

    private static ByteBuffer filled(int length, int pattern) {
        ByteBuffer b = ByteBuffer.allocateDirect(Math.max(length, 1));
        byte[] row = new byte[Math.min(Math.max(length, 1), 64 << 10)];
        Arrays.fill(row, (byte) pattern);
        while (b.hasRemaining()) {
            b.put(row, 0, Math.min(row.length, b.remaining()));
        }
        return b.clear().limit(length);
    }

    /** qemu-io's {@code dump_buffer}: 16 bytes a line, printable only if alphanumeric. */
    private void dump(byte[] buffer, long offset) {
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

    // ------------------------------------------------------------------ write

    private int write(String name, List<String> argv) throws IOException {
        GetOpt g = new GetOpt(name, argv, "fnpquzP:s:", err);
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
        } else if (count > REQUEST_MAX_BYTES && !zflag) {
            out.println("length cannot exceed " + REQUEST_MAX_BYTES + " without -n, given " + ops.get(1));
            return EINVAL;
        }
        byte[] source = null;
        if (sflag) {
            source = loadPattern(sourceFile, count);
            if (source == null) {
                return EINVAL;
            }
        }
        if (!inRange(offset, count)) {
            out.println("write failed: Input/output error");
            return EIO;
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
                    image.writeZeroes(offset, count, flags);
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
                    image.write(buf, offset + done);
                    done += n;
                }
            }
            if (fua) {
                image.flush();
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
            report("wrote", elapsed, offset, count, count, 1);
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

    // ------------------------------------------------------------------ discard, flush, truncate

    private int discard(String name, List<String> argv) throws IOException {
        GetOpt g = new GetOpt(name, argv, "q", err);
        boolean qflag = false;
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            if (c == 'q') {
                qflag = true;
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
        long offset = cvtnum(ops.get(0));
        if (offset < 0) {
            printCvtnumErr(offset, ops.get(0));
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
            if (bytes > 0) {
                image.discard(offset, bytes);
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
            report("discard", elapsed, offset, bytes, bytes, 1);
        }
        return 0;
    }

    private int flush(String name, List<String> argv) throws IOException {
        image.flush();
        return 0;
    }

    private int truncate(String name, List<String> argv) throws IOException {
        GetOpt g = new GetOpt(name, argv, "m:", err);
        Preallocation prealloc = Preallocation.OFF;
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            if (c == 'm') {
                try {
                    prealloc = Preallocation.parse(g.optarg());
                } catch (IllegalArgumentException e) {
                    out.flush();
                    err.println("imago: Invalid preallocation mode '" + g.optarg() + "'");
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
        long size = cvtnum(ops.getFirst());
        if (size < 0) {
            printCvtnumErr(size, ops.getFirst());
            return (int) size;
        }
        image.resize(size, prealloc);
        return 0;
    }

    // ------------------------------------------------------------------ map, alloc, length

    private int map(String name, List<String> argv) throws IOException {
        long size = image.size();
        long offset = 0;
        while (offset < size) {
            Mapping m = image.mapping(offset, size - offset);
            if (m.length() == 0) {
                out.flush();
                err.println("imago: Unexpected end of image");
                return EIO;
            }
            boolean allocated = !(m instanceof Mapping.Unallocated);
            long num = m.length();
            // qemu-io's map_is_allocated: one line for a whole run of the same status
            while (offset + num < size) {
                Mapping next = image.mapping(offset + num, size - offset - num);
                if (next.length() == 0 || !(next instanceof Mapping.Unallocated) != allocated) {
                    break;
                }
                num += next.length();
            }
            out.println(Sizes.ioUnits(num) + " (0x" + Long.toHexString(num) + ") bytes "
                    + (allocated ? "    allocated" : "not allocated") + " at offset " + Sizes.ioUnits(offset)
                    + " (0x" + Long.toHexString(offset) + ")");
            offset += num;
        }
        return 0;
    }

    private int alloc(String name, List<String> argv) throws IOException {
        long start = cvtnum(argv.get(0));
        if (start < 0) {
            printCvtnumErr(start, argv.get(0));
            return (int) start;
        }
        long count = 512;
        if (argv.size() == 2) {
            count = cvtnum(argv.get(1));
            if (count < 0) {
                printCvtnumErr(count, argv.get(1));
                return (int) count;
            }
        }
        long size = image.size();
        long offset = start;
        long remaining = count;
        long allocated = 0;
        while (remaining > 0) {
            if (offset >= size) {
                count -= remaining;
                break;
            }
            Mapping m = image.mapping(offset, remaining);
            if (m.length() == 0) {
                count -= remaining;
                break;
            }
            if (!(m instanceof Mapping.Unallocated)) {
                allocated += m.length();
            }
            offset += m.length();
            remaining -= m.length();
        }
        out.println(allocated + "/" + count + " bytes allocated at offset " + Sizes.ioUnits(start));
        return 0;
    }

    private int length(String name, List<String> argv) throws IOException {
        out.println(Sizes.ioUnits(image.size()));
        return 0;
    }

    // ------------------------------------------------------------------ help

    private int help(String name, List<String> argv) {
        if (argv.isEmpty()) {
            for (Cmd c : commands.values()) {
                oneLine(c.name(), c);
            }
            out.println();
            out.println("Use 'help commandname' for extended help.");
            return 0;
        }
        Cmd c = find(argv.getFirst());
        if (c == null) {
            out.println("command " + argv.getFirst() + " not found");
            return EINVAL;
        }
        oneLine(argv.getFirst(), c);
        if (c.help() != null) {
            out.print(c.help());
        }
        return 0;
    }

    private void oneLine(String shown, Cmd c) {
        out.println(shown + " " + (c.args() != null ? c.args() + " " : "") + "-- " + c.oneLine());
    }

    // ------------------------------------------------------------------ statistics

    /** qemu-io's {@code print_report}. */
    private void report(String op, long nanos, long offset, long count, long total, int ops) {
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

    private static final String READ_HELP = """

             reads a range of bytes from the given offset

             Example:
             'read -v 512 1k' - dumps 1 kilobyte read from 512 bytes into the file

             Reads a segment of the currently open file, optionally dumping it to the
             standard output stream (with -v option) for subsequent inspection.
             -l, -- length for pattern verification (only with -P)
             -p, -- ignored for backwards compatibility
             -P, -- use a pattern to verify read data
             -q, -- quiet mode, do not show I/O statistics
             -s, -- start offset for pattern verification (only with -P)
             -v, -- dump buffer to standard output

            """;

    private static final String WRITE_HELP = """

             writes a range of bytes from the given offset

             Example:
             'write 512 1k' - writes 1 kilobyte at 512 bytes into the open file

             Writes into a segment of the currently open file, using a buffer
             filled with a set pattern (0xcdcdcdcd).
             -f, -- use Force Unit Access semantics (flush after writing)
             -n, -- with -z, don't allow slow fallback
             -p, -- ignored for backwards compatibility
             -P, -- use different pattern to fill file
             -s, -- use a pattern file to fill the write buffer
             -q, -- quiet mode, do not show I/O statistics
             -u, -- with -z, allow unmapping
             -z, -- write zeroes without a data buffer

            """;

    private static final String DISCARD_HELP = """

             discards a range of bytes from the given offset

             Example:
             'discard 512 1k' - discards 1 kilobyte from 512 bytes into the file

             Discards a segment of the currently open file.
             -q, -- quiet mode, do not show I/O statistics

            """;
}
