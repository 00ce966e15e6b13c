package imago.cli.io;

import static imago.cli.io.IoCommands.EINVAL;
import static imago.cli.io.IoCommands.EIO;
import static imago.cli.io.IoCommands.EPERM;

import imago.api.Image;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * qemu-io's command language over an open {@link Image}: {@code read}, {@code write}, {@code discard},
 * {@code flush}, {@code truncate}, {@code map}, {@code alloc}, {@code length}, {@code help} and
 * {@code quit}, with qemu-io's options, messages, statistics lines and hex dumps. A command that fails
 * does not stop the ones after it, but makes the exit status 1.
 */
public final class QemuIo {
    private final Image image;
    private final String fileName;
    private final PrintStream out;
    private final PrintStream err;
    private final Function<Throwable, String> describe;
    private final Map<String, Cmd> commands = new TreeMap<>();
    private final IoOptions options;
    private final String program;
    private boolean quit;

    /**
     * @param image the open image
     * @param fileName the image's name as the user typed it, for messages
     * @param out standard output, where qemu-io prints results and most errors
     * @param err standard error, for the messages qemu-io prints there
     * @param describe the message (without the program name) for a failure of the library
     */
    public QemuIo(Image image, String fileName, PrintStream out, PrintStream err,
            Function<Throwable, String> describe) {
        this(image, fileName, out, err, describe, IoOptions.DEFAULTS);
    }

    /**
     * @param image the open image
     * @param fileName the image's name as the user typed it, for messages
     * @param out standard output, where qemu-io prints results and most errors
     * @param err standard error, for the messages qemu-io prints there
     * @param describe the message (without the program name) for a failure of the library
     * @param options what qemu-io's global options change in how the commands run
     */
    public QemuIo(Image image, String fileName, PrintStream out, PrintStream err,
            Function<Throwable, String> describe, IoOptions options) {
        this("imago", image, fileName, out, err, describe, options);
    }

    /**
     * @param program the name messages start with, the one the command was invoked by
     * @param image the open image
     * @param fileName the image's name as the user typed it, for messages
     * @param out standard output, where qemu-io prints results and most errors
     * @param err standard error, for the messages qemu-io prints there
     * @param describe the message (without the program name) for a failure of the library
     * @param options what qemu-io's global options change in how the commands run
     */
    public QemuIo(String program, Image image, String fileName, PrintStream out, PrintStream err,
            Function<Throwable, String> describe, IoOptions options) {
        this.program = program;
        this.image = image;
        this.fileName = fileName;
        this.out = out;
        this.err = err;
        this.describe = describe;
        this.options = options;
        IoCommands.Context context = new IoCommands.Context(program, image, out, err, describe, commands, options);
        ReadCommand read = new ReadCommand(context);
        WriteCommand write = new WriteCommand(context);
        ImageCommands change = new ImageCommands(context);
        AllocationCommands map = new AllocationCommands(context);
        add(new Cmd("alloc", "a", 1, 2, "offset [count]", "checks if offset is allocated in the file", null, false,
                map::alloc));
        add(new Cmd("discard", "d", 2, -1, "[-q] off len", "discards a number of bytes at a specified offset",
                DISCARD_HELP, true, change::discard));
        add(new Cmd("flush", "f", 0, 0, null, "flush all in-core file state to disk", null, false, change::flush));
        add(new Cmd("help", "?", 0, 1, "[command]", "help for one or all commands", null, false, this::help));
        add(new Cmd("length", "l", 0, 0, null, "gets the length of the current file", null, false, map::length));
        add(new Cmd("map", null, 0, 0, "", "prints the allocated areas of a file", null, false, map::map));
        add(new Cmd("quit", "q", 0, 0, null, "exit the program", null, false, (n, a) -> {
            quit = true;
            return 0;
        }));
        add(new Cmd("read", "r", 2, -1, "[-pqv] [-P pattern [-s off] [-l len]] off len",
                "reads a number of bytes at a specified offset", READ_HELP, false, read::read));
        add(new Cmd("truncate", "t", 1, 3, "[-m prealloc_mode] off",
                "truncates the current file at the given offset", null, true, change::truncate));
        add(new Cmd("write", "w", 2, -1, "[-fnpquz] [-P pattern | -s source_file] off len",
                "writes a number of bytes at a specified offset", WRITE_HELP, true, write::write));
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
            // qemu-io's words: its check of the command's "writes" flag against the open mode
            err.println(program + ": Block node is read-only");
            return EPERM;
        }
        try {
            int ret = cmd.handler().run(name, argv.subList(1, argv.size()));
            if (ret == 0 && cmd.writes() && options.writeThrough()) {
                image.flush();
            }
            return ret;
        } catch (IOException | RuntimeException e) {
            out.flush();
            err.println(program + ": " + describe.apply(e));
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
