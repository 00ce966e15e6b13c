package imago.cli.io;

import imago.api.ImageInfo;
import imago.cli.info.InfoReport;
import imago.cli.text.QemuOpts;
import imago.cli.text.Sizes;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * qemu-io's commands about the open image rather than its data: {@code open}, {@code close}, {@code reopen},
 * {@code info}; and those about the program: {@code sleep}, {@code sigraise}, {@code abort}, and the breakpoint
 * commands of QEMU's {@code blkdebug} driver, which imago does not have.
 */
final class SessionCommands extends IoCommands {
    /** qemu-io's default cache mode, and the discard and AIO modes it opens with unless told otherwise. */
    static final String DEFAULT_CACHE = "writeback";

    SessionCommands(Context context) {
        super(context);
    }

    /** qemu-io's {@code open}. */
    int open(String name, List<String> argv) {
        GetOpt g = new GetOpt(name, argv, "rsCnkUt:d:i:o:", err);
        boolean readOnly = false;
        boolean snapshot = false;
        boolean copyOnRead = false;
        boolean forceShare = false;
        String cache = DEFAULT_CACHE;
        String aio = "threads";
        String discard = "unmap";
        List<String> optionStrings = new java.util.ArrayList<>();
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            switch (c) {
                case 'r' -> readOnly = true;
                case 's' -> snapshot = true;
                case 'C' -> copyOnRead = true;
                case 'n' -> cache = "none";
                case 'k' -> aio = "native";
                case 'U' -> forceShare = true;
                case 't' -> cache = g.optarg();
                case 'd' -> discard = g.optarg();
                case 'i' -> aio = g.optarg();
                case 'o' -> optionStrings.add(g.optarg());
                default -> {
                    usage(commands.get("open"));
                    return EINVAL;
                }
            }
        }
        Map<String, String> options;
        try {
            OpenArguments.checkModes(cache, aio, discard);
            options = optionStrings.isEmpty() ? Map.of() : new LinkedHashMap<>(QemuOpts.parse(optionStrings));
        } catch (IllegalArgumentException e) {
            error(e.getMessage());
            return EINVAL;
        }
        List<String> ops = g.operands();
        if (ops.size() > 1) {
            usage(commands.get("open"));
            return EINVAL;
        }
        if (state().isOpen()) {
            error("file open already, try 'help close'");
            return EBUSY;
        }
        OpenArguments arguments = new OpenArguments(ops.isEmpty() ? null : ops.getFirst(), options, readOnly, snapshot,
                copyOnRead, cache, aio, discard, forceShare, true);
        try {
            state().open(arguments);
        } catch (IOException | RuntimeException e) {
            error(describe.apply(e));
            return EINVAL;
        }
        return 0;
    }

    /** The qcow2 options QEMU lets {@code reopen -o} change (imago accepts them; it has no such caches to tune). */
    private static final java.util.Set<String> QCOW2_RUNTIME_OPTIONS = java.util.Set.of("lazy-refcounts",
            "pass-discard-request", "pass-discard-snapshot", "pass-discard-other", "discard-no-unref",
            "overlap-check", "cache-size", "l2-cache-size", "l2-cache-entry-size", "refcount-cache-size",
            "cache-clean-interval");

    /** qemu-io's {@code close}. */
    int close(String name, List<String> argv) throws IOException {
        state().close();
        return 0;
    }

    /**
     * qemu-io's {@code reopen}: read-only or writable ({@code -r}, {@code -w}), another cache mode ({@code -c}) or
     * driver options ({@code -o}). imago closes the image and opens it again so; a temporary overlay ({@code -s})
     * cannot be reopened, its writes would be lost.
     */
    int reopen(String name, List<String> argv) throws IOException {
        GetOpt g = new GetOpt(name, argv, "c:o:rw", err);
        Boolean readOnly = null;
        String cache = null;
        List<String> optionStrings = new java.util.ArrayList<>();
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            switch (c) {
                case 'c' -> cache = g.optarg();
                case 'o' -> optionStrings.add(g.optarg());
                case 'r', 'w' -> {
                    if (readOnly != null) {
                        error("Only one -r/-w option may be given");
                        return EINVAL;
                    }
                    readOnly = c == 'r';
                }
                default -> {
                    usage(commands.get("reopen"));
                    return EINVAL;
                }
            }
        }
        if (!g.operands().isEmpty()) {
            usage(commands.get("reopen"));
            return EINVAL;
        }
        if (cache != null && !OpenArguments.CACHE_MODES.contains(cache)) {
            error("Invalid cache option: " + cache);
            return EINVAL;
        }
        Map<String, String> options;
        try {
            options = optionStrings.isEmpty() ? Map.of() : QemuOpts.parse(optionStrings);
        } catch (IllegalArgumentException e) {
            error(e.getMessage());
            return EINVAL;
        }
        for (Map.Entry<String, String> option : options.entrySet()) {
            String key = option.getKey();
            boolean unchanged = key.equals("driver") && option.getValue().equals(image().format());
            if (!unchanged && (!QCOW2_RUNTIME_OPTIONS.contains(key) || !image().format().equals("qcow2"))) {
                error("Cannot change the option '" + key + "'");
                return EINVAL;
            }
        }
        OpenArguments was = state().openedWith();
        if (was.snapshot()) {
            error("imago cannot reopen an image opened with -s (its temporary overlay would be lost)");
            return ENOTSUP;
        }
        Map<String, String> merged = new LinkedHashMap<>(was.options());
        merged.putAll(options);
        OpenArguments now = new OpenArguments(was.name(), merged, readOnly != null ? readOnly : was.readOnly(),
                false, was.copyOnRead(), cache != null ? cache : was.cache(), was.aio(), was.discard(),
                was.forceShare(), false);
        state().close();
        try {
            state().open(now);
        } catch (IOException | RuntimeException e) {
            error(describe.apply(e));
            // back to the image as it was, as a failed reopen leaves it in QEMU
            try {
                state().open(was);
            } catch (IOException | RuntimeException again) {
                error(describe.apply(again));
            }
            return EINVAL;
        }
        return 0;
    }

    /** qemu-io's {@code info}: format, cluster size, VM state offset and the format-specific fields. */
    int info(String name, List<String> argv) throws IOException {
        ImageInfo info = image().info();
        long cluster = info.clusterSize().orElse(0);
        out.println("format name: " + info.format());
        out.println("cluster size: " + Sizes.ioUnits(cluster));
        out.println("vm state offset: " + Sizes.ioUnits(vmStateOffset(info, cluster)));
        OpenArguments opened = state().openedWith();
        String shown = opened == null || opened.name() == null ? info.filename() : opened.name();
        out.print(InfoReport.formatSpecificHuman(new InfoReport.Layer(shown, info)));
        return 0;
    }

    /**
     * Where QEMU puts the VM state: for qcow2 past the guest-visible L1 entries (the virtual size rounded up to
     * what one L2 table maps), for other formats nowhere (0).
     */
    private static long vmStateOffset(ImageInfo info, long cluster) {
        if (!info.format().equals("qcow2") || cluster == 0) {
            return 0;
        }
        boolean extendedL2 = Boolean.TRUE.equals(info.formatSpecific().get("extended-l2"));
        long perTable = cluster * (cluster / (extendedL2 ? 16 : 8));
        return (info.virtualSize() + perTable - 1) / perTable * perTable;
    }

    /**
     * qemu-io's {@code sleep}: milliseconds, as {@code strtol(arg, 0)} reads them; the asynchronous requests in flight
     * complete meanwhile.
     */
    int sleep(String name, List<String> argv) {
        long ms = parseLong(argv.getFirst());
        if (ms < 0) {
            out.println(argv.getFirst() + " is not a valid number");
            return EINVAL;
        }
        try {
            TimeUnit.MILLISECONDS.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        // qemu-io's sleep runs its event loop, which completes (and prints) the requests in flight
        state().drain();
        return 0;
    }

    /** Linux's {@code NSIG}: one more than the highest signal number. */
    private static final int NSIG = 65;

    /** qemu-io's {@code sigraise}: raises the signal in this process, after flushing what was printed. */
    int sigraise(String name, List<String> argv) {
        long signal = cvtnum(argv.getFirst());
        if (signal < 0) {
            printCvtnumErr(signal, argv.getFirst());
            return (int) signal;
        } else if (signal > NSIG) {
            out.println("signal argument '" + argv.getFirst() + "' is too large to be a valid signal");
            return EINVAL;
        }
        raise(signal);
        return 0;
    }

    /** qemu-io's {@code abort}: ends the process with {@code SIGABRT}, as {@code abort(3)}. */
    int abort(String name, List<String> argv) {
        // what earlier commands printed is out already (imago flushes after each command), where abort(3) loses
        // what qemu-io's stdio buffered for a pipe or a file
        out.flush();
        err.flush();
        kill("ABRT");
        Runtime.getRuntime().halt(128 + 6); // abort(3) does not return, whatever the disposition of SIGABRT
        return 0;
    }

    /**
     * {@code raise(signal)} after flushing what was printed, as qemu-io does: the signals qemu-io ignores or
     * handles (and those ignored by default) do nothing, those the JVM would handle itself (a thread dump for
     * {@code SIGQUIT}) end the process with the shell's status for them, others are sent to this process.
     */
    private void raise(long signal) {
        out.flush();
        err.flush();
        if (IGNORED_SIGNALS.contains((int) signal)) {
            return;
        }
        if (signal == SIGQUIT || signal == SIGUSR2) {
            Runtime.getRuntime().halt((int) (128 + signal));
        }
        kill(Long.toString(signal));
    }

    /** Signals qemu-io goes on after: 0, SIGUSR1 (QEMU's own), SIGPIPE (ignored), and those ignored by default. */
    private static final java.util.Set<Integer> IGNORED_SIGNALS = java.util.Set.of(0, 10, 13, 17, 18, 23, 28);
    private static final int SIGQUIT = 3;
    private static final int SIGUSR2 = 12;

    /** Sends {@code signal} (a number or name) to this process and gives it a moment to arrive. */
    private void kill(String signal) {
        try {
            Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(ProcessHandle.current().pid()))
                    .inheritIO().start();
            kill.waitFor();
            Thread.sleep(200);
        } catch (IOException e) {
            error("cannot raise signal " + signal + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** qemu-io's {@code break}: only QEMU's blkdebug driver has breakpoints. */
    int setBreakpoint(String name, List<String> argv) {
        out.println("Could not set breakpoint: Operation not supported");
        return ENOTSUP;
    }

    /** qemu-io's {@code remove_break}. */
    int removeBreakpoint(String name, List<String> argv) {
        out.println("Could not remove breakpoint " + argv.getFirst() + ": Operation not supported");
        return ENOTSUP;
    }

    /** qemu-io's {@code resume}. */
    int resume(String name, List<String> argv) {
        out.println("Could not resume request: Operation not supported");
        return ENOTSUP;
    }

    /**
     * qemu-io's {@code wait_break}, which without blkdebug waits for ever for a request that never stops: imago
     * fails at once instead.
     */
    int waitBreak(String name, List<String> argv) {
        out.println("Could not wait for breakpoint " + argv.getFirst() + ": Operation not supported");
        return ENOTSUP;
    }

    /** {@code strtol(text, &end, 0)} when all of {@code text} is a number, else -1. */
    private static long parseLong(String text) {
        try {
            String s = text;
            boolean negative = s.startsWith("-");
            if (negative || s.startsWith("+")) {
                s = s.substring(1);
            }
            long v;
            if (s.startsWith("0x") || s.startsWith("0X")) {
                v = Long.parseLong(s.substring(2), 16);
            } else if (s.length() > 1 && s.startsWith("0")) {
                v = Long.parseLong(s.substring(1), 8);
            } else {
                v = Long.parseLong(s, 10);
            }
            return negative ? -v : v;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Prints {@code message} as QEMU's {@code error_report} does: on standard error, after the program's name. */
    private void error(String message) {
        out.flush();
        err.println(program + ": " + message);
    }
}
