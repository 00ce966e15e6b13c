package imago.cli.io;

import static imago.cli.io.IoCommands.EINVAL;
import static imago.cli.io.IoCommands.EIO;
import static imago.cli.io.IoCommands.EPERM;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * qemu-io's command language: the commands of qemu-io 7.2 ({@code help} lists them) with its options, messages,
 * statistics lines and hex dumps, on the image opened on the command line or with {@code open}. A command that
 * fails does not stop the ones after it, but makes the exit status 1.
 */
public final class QemuIo {
    private final PrintStream out;
    private final PrintStream err;
    private final Map<String, Cmd> commands = new TreeMap<>();
    private final IoState state;
    private final String program;
    private final Function<Throwable, String> describe;
    private boolean quit;

    /**
     * @param program the name messages start with, the one the command was invoked by
     * @param opener opens the images the command line and {@code open} name
     * @param out standard output, where qemu-io prints results and most errors
     * @param err standard error, for the messages qemu-io prints there
     * @param describe the message (without the program name) for a failure of the library
     */
    public QemuIo(String program, ImageOpener opener, PrintStream out, PrintStream err,
            Function<Throwable, String> describe) {
        this.program = program;
        this.out = out;
        this.err = err;
        this.state = new IoState(opener, out);
        this.describe = describe;
        IoCommands.Context context = new IoCommands.Context(program, state, out, err, describe, commands);
        ReadCommand read = new ReadCommand(context);
        WriteCommand write = new WriteCommand(context);
        VectorCommands vector = new VectorCommands(context);
        ImageCommands change = new ImageCommands(context);
        AllocationCommands map = new AllocationCommands(context);
        SessionCommands session = new SessionCommands(context);
        add(new Cmd("abort", null, 0, 0, null, "simulate a program crash using abort(3)", null, false, true,
                session::abort));
        add(new Cmd("aio_flush", null, 0, 0, null, "completes all outstanding aio requests", null, false, false,
                vector::aioFlush));
        add(new Cmd("aio_read", null, 2, -1, "[-Ciqv] [-P pattern] off len [len..]",
                "asynchronously reads a number of bytes", IoHelp.AIO_READ, false, false, vector::aioRead));
        add(new Cmd("aio_write", null, 2, -1, "[-Cfiquz] [-P pattern] off len [len..]",
                "asynchronously writes a number of bytes", IoHelp.AIO_WRITE, true, false, vector::aioWrite));
        add(new Cmd("alloc", "a", 1, 2, "offset [count]", "checks if offset is allocated in the file", null, false,
                false, map::alloc));
        add(new Cmd("break", null, 2, 2, "event tag", "sets a breakpoint on event and tags the stopped request as tag",
                null, false, false, session::setBreakpoint));
        add(new Cmd("close", "c", 0, 0, null, "close the current open file", null, false, false, session::close));
        add(new Cmd("discard", "d", 2, -1, "[-Cq] off len", "discards a number of bytes at a specified offset",
                IoHelp.DISCARD, true, false, change::discard));
        add(new Cmd("flush", "f", 0, 0, null, "flush all in-core file state to disk", null, false, false,
                change::flush));
        add(new Cmd("help", "?", 0, 1, "[command]", "help for one or all commands", null, false, true, this::help));
        add(new Cmd("info", "i", 0, 0, null, "prints information about the current file", null, false, false,
                session::info));
        add(new Cmd("length", "l", 0, 0, null, "gets the length of the current file", null, false, false,
                map::length));
        add(new Cmd("map", null, 0, 0, "", "prints the allocated areas of a file", null, false, false, map::map));
        add(new Cmd("open", "o", 1, -1, "[-rsCnkU] [-t cache] [-d discard] [-o options] [path]",
                "open the file specified by path", IoHelp.OPEN, false, true, session::open));
        add(new Cmd("quit", "q", -1, -1, null, "exit the program", null, false, true, (n, a) -> {
            quit = true;
            return 0;
        }));
        add(new Cmd("read", "r", 2, -1, "[-abCqv] [-P pattern [-s off] [-l len]] off len",
                "reads a number of bytes at a specified offset", IoHelp.READ, false, false, read::read));
        add(new Cmd("readv", null, 2, -1, "[-Cqv] [-P pattern] off len [len..]",
                "reads a number of bytes at a specified offset", IoHelp.READV, false, false, vector::readv));
        add(new Cmd("remove_break", null, 1, 1, "tag", "remove a breakpoint by tag", null, false, false,
                session::removeBreakpoint));
        add(new Cmd("reopen", null, 0, -1, "[(-r|-w)] [-c cache] [-o options]", "reopens an image with new options",
                IoHelp.REOPEN, false, false, session::reopen));
        add(new Cmd("resume", null, 1, 1, "tag", "resumes the request tagged as tag", null, false, false,
                session::resume));
        add(new Cmd("sigraise", null, 1, 1, "signal", "raises a signal", IoHelp.SIGRAISE, false, true,
                session::sigraise));
        add(new Cmd("sleep", null, 1, 1, null, "waits for the given value in milliseconds", null, false, true,
                session::sleep));
        add(new Cmd("truncate", "t", 1, 3, "[-m prealloc_mode] off",
                "truncates the current file at the given offset", null, true, false, change::truncate));
        add(new Cmd("wait_break", null, 1, 1, "tag", "waits for the suspension of a request", null, false, false,
                session::waitBreak));
        add(new Cmd("write", "w", 2, -1, "[-bcCfnquz] [-P pattern | -s source_file] off len",
                "writes a number of bytes at a specified offset", IoHelp.WRITE, true, false, write::write));
        add(new Cmd("writev", null, 2, -1, "[-Cfq] [-P pattern] off len [len..]",
                "writes a number of bytes at a specified offset", IoHelp.WRITEV, true, false, vector::writev));
    }

    /**
     * Opens the image named on the command line.
     *
     * @throws IOException or a runtime exception if it cannot be opened, as the opener throws
     */
    public void open(OpenArguments arguments) throws IOException {
        state.open(arguments);
    }

    /** Closes the open image, if any. @throws IOException if closing it fails */
    public void close() throws IOException {
        state.close();
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
     * qemu-io's interactive mode: prints the prompt ({@code PROGRAM> }, no line break) on standard output, reads
     * a command line from {@code in}, runs it, and so on until the input ends or {@code quit}; returns the exit
     * status. As in qemu-io, the prompt is printed whether or not the input is a terminal, and once more when
     * the input ends.
     *
     * @throws IOException if {@code in} cannot be read
     */
    public int run(InputStream in) throws IOException {
        int lastError = 0;
        var reader = new java.io.BufferedReader(new java.io.InputStreamReader(in,
                java.nio.charset.Charset.defaultCharset()));
        while (!quit) {
            out.print(program + "> ");
            out.flush();
            String line = reader.readLine();
            if (line == null) {
                break;
            }
            if (execute(line) < 0) {
                lastError = 1;
            }
        }
        out.flush();
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
        if (!cmd.global() && !state.isOpen()) {
            out.flush();
            err.println("no file open, try 'help open'");
            return EINVAL;
        }
        if ((cmd.argMin() > -1 && argc < cmd.argMin()) || (cmd.argMax() > -1 && argc > cmd.argMax())) {
            badArgumentCount(name, argc, cmd);
            return EINVAL;
        }
        if (cmd.writes() && state.image().readOnly()) {
            out.flush();
            // qemu-io's words: its check of the command's "writes" flag against the open mode
            err.println(program + ": Block node is read-only");
            return EPERM;
        }
        try {
            int ret = cmd.handler().run(name, argv.subList(1, argv.size()));
            if (ret == 0 && cmd.writes() && state.options().writeThrough()) {
                state.image().flush();
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

    private void badArgumentCount(String name, int argc, Cmd cmd) {
        out.flush();
        if (cmd.argMax() == -1) {
            err.println("bad argument count " + argc + " to " + name + ", expected at least " + cmd.argMin()
                    + " arguments");
        } else if (cmd.argMin() == cmd.argMax()) {
            err.println("bad argument count " + argc + " to " + name + ", expected " + cmd.argMin() + " arguments");
        } else {
            err.println("bad argument count " + argc + " to " + name + ", expected between " + cmd.argMin() + " and "
                    + cmd.argMax() + " arguments");
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
}
