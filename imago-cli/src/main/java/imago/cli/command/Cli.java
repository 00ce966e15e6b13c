package imago.cli.command;

import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.lang.reflect.Constructor;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;
import picocli.CommandLine.IFactory;
import picocli.CommandLine.MissingParameterException;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.UnmatchedArgumentException;

/**
 * Runs the {@code imago} command line: parses it with picocli into the subcommands and turns every
 * failure into one line on standard error and exit status 1, as qemu-img does ({@code compare} has
 * qemu-img compare's own statuses for the failures it reports itself).
 */
public final class Cli {
    /** Exit status for success. */
    public static final int OK = 0;
    /** Exit status for any failure, usage errors included. */
    public static final int FAILED = 1;
    /** The name messages start with when the launcher does not say how it was invoked. */
    public static final String DEFAULT_PROGRAM = "imago";
    /** The name that makes the command {@code io}, as a {@code qemu-io} symlink to the launcher invokes it. */
    public static final String QEMU_IO = "qemu-io";

    /** The subcommands qemu-img has that picocli parses ({@code dd} parses its options as getopt itself). */
    private static final Set<String> QEMU_IMG_SUBCOMMANDS = Set.of("amend", "bench", "bitmap", "check", "commit",
            "compare", "convert", "create", "info", "map", "measure", "rebase", "resize", "snapshot");

    /** What qemu-img says when a subcommand gets too few or too many file names. */
    private static final Map<String, String> OPERAND_ERRORS = Map.of("info", "Expecting one image file name",
            "check", "Expecting one image file name", "map", "Expecting one image file name",
            "snapshot", "Expecting one image file name", "commit", "Expecting one image file name",
            "rebase", "Expecting one image file name", "bench", "Expecting one image file name",
            "compare", "Expecting two image file names");

    /** picocli's note on the word an unknown short option came in ({@code -qU}). */
    private static final Pattern CLUSTER = Pattern.compile("\\(while processing option: '(.*)'\\)");
    /** The option as typed in picocli's message for an option given without its argument. */
    private static final Pattern MISSING_ARGUMENT = Pattern.compile("parameter for option '([^']+)'");

    /**
     * The name the command was invoked by, as the launcher passes it (system property {@code imago.program},
     * else environment variable {@code IMAGO_PROGRAM}), or {@link #DEFAULT_PROGRAM}: a {@code qemu-img} symlink
     * to the launcher makes messages start with {@code qemu-img:}, as QEMU's tools name themselves.
     */
    public static String invokedName() {
        String name = System.getProperty("imago.program");
        if (name == null || name.isBlank()) {
            name = System.getenv("IMAGO_PROGRAM");
        }
        if (name == null || name.isBlank()) {
            return DEFAULT_PROGRAM;
        }
        int slash = name.lastIndexOf('/');
        return name.substring(slash + 1);
    }

    private Cli() {
    }

    /**
     * Runs the command with {@code args}, writing to {@code out} and {@code err}, and returns the exit
     * status. Never calls {@link System#exit}.
     */
    public static int run(PrintStream out, PrintStream err, String... args) {
        return run(DEFAULT_PROGRAM, out, err, args);
    }

    /**
     * Runs the command as {@link #run(PrintStream, PrintStream, String...)} does, with messages that start with
     * {@code program}, the name it was invoked by.
     */
    public static int run(String program, PrintStream out, PrintStream err, String... args) {
        return run(program, System.in, out, err, args);
    }

    /**
     * Runs the command as {@link #run(String, PrintStream, PrintStream, String...)} does, reading standard input from
     * {@code in}. Invoked as {@code qemu-io} (a symlink to the launcher), the command is {@code io}: the arguments
     * are qemu-io's.
     */
    public static int run(String program, java.io.InputStream in, PrintStream out, PrintStream err, String... args) {
        if (program.equals(QEMU_IO)) {
            String[] io = new String[args.length + 1];
            io[0] = "io";
            System.arraycopy(args, 0, io, 1, args.length);
            args = io;
        }
        Session session = new Session(program, in, out, err);
        try {
            LeadingOptions leading = LeadingOptions.read(session, args); // qemu-img's options before the command
            if (leading.status != null) {
                return leading.status;
            }
            if (leading.version) {
                // the one command that needs no model: picocli's reads the annotations, which spins a proxy
                // class per annotation type (~40 ms, more than the JVM's own start-up)
                for (String line : new VersionProvider().getVersion()) {
                    out.println(line);
                }
                return OK;
            }
            args = leading.help ? new String[] {"--help"} : leading.rest;
            // info and map in their plain forms, as scripts call them per image: parsed without picocli's model
            Callable<Integer> direct = DirectRun.parse(session, args);
            if (direct == null) {
                direct = DirectConvert.parse(session, args); // and convert's, for a cold copy's start
            }
            if (direct != null) {
                return runDirect(session, direct);
            }
            CommandLine cl = commandLine(session, args);
            return cl.execute(args);
        } catch (RuntimeException e) { // picocli's own failures while building the model: a bug
            report(session, e);
            return FAILED;
        } catch (IOException e) { // the version resource unreadable
            report(session, e);
            return FAILED;
        } finally {
            out.flush();
            err.flush();
        }
    }

    static CommandLine commandLine(Session session, String... args) {
        Factory factory = new Factory(session);
        CommandLine cl = new CommandLine(ImagoCommand.class, factory);
        for (ImagoCommand.Subcommand s : subcommandsFor(args)) {
            CommandLine sub = new CommandLine(s.type(), factory);
            // a command that reads its options itself, as getopt does (dd): picocli leaves them in order
            sub.setUnmatchedOptionsArePositionalParams(GetoptCommand.class.isAssignableFrom(s.type()));
            cl.addSubcommand(s.name(), sub);
        }
        cl.setExpandAtFiles(false); // a file name may start with '@'
        cl.setOverwrittenOptionsAllowed(true); // like getopt: the last one wins
        cl.setOut(new PrintWriter(session.out(), true));
        cl.setErr(new PrintWriter(session.err(), true));
        cl.setParameterExceptionHandler((ex, unmatched) -> usageError(session, ex, args));
        cl.setExecutionStrategy(parseResult -> {
            // picocli checks option values only when the command runs; qemu-img as its getopt loop reads them
            CommandLine sub = parseResult.subcommand() == null ? null : parseResult.subcommand().commandSpec()
                    .commandLine();
            Integer refused = sub == null ? null : optionOrderProblem(session, sub, args);
            return refused != null ? refused : new CommandLine.RunLast().execute(parseResult);
        });
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            report(session, ex);
            return FAILED;
        });
        return cl;
    }

    /**
     * The subcommands picocli needs for {@code args}: the one they name (the first word that is neither
     * an option of {@code imago} itself nor the value of {@code --gate}), all of them when help is asked
     * for before it ({@code -h}, {@code --help}, {@code help}) or the word is no command (picocli lists
     * them), none when there is no word ({@code --version}, a usage error).
     */
    static List<ImagoCommand.Subcommand> subcommandsFor(String... args) {
        boolean help = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--")) {
                break;
            }
            if (a.equals("--gate")) {
                if (i + 1 < args.length && ImagoCommand.subcommand(args[i + 1]) == null) {
                    i++; // its value; picocli takes no command name as one (it says the value is missing)
                }
            } else if (a.startsWith("-")) {
                help |= a.equals("--help") || !a.startsWith("--") && a.indexOf('h') > 0; // -h, -Vh
            } else {
                ImagoCommand.Subcommand named = ImagoCommand.subcommand(a);
                return help || named == null || a.equals("help") ? ImagoCommand.SUBCOMMANDS : List.of(named);
            }
        }
        return help ? ImagoCommand.SUBCOMMANDS : List.of();
    }

    /** Runs a command {@link DirectRun} parsed, with the failure handling picocli's execution gives the others. */
    private static int runDirect(Session session, Callable<Integer> command) {
        try {
            return command.call();
        } catch (Exception e) { // picocli's execution exception handler gets the same exception (its cause)
            report(session, e);
            return FAILED;
        }
    }

    /** One line for a failure, plus the stack trace with {@code --debug}. */
    static void report(Session session, Throwable failure) {
        session.error(Errors.describe(failure, session));
        if (session.debug()) {
            failure.printStackTrace(session.err());
        }
        session.err().flush();
    }

    private static int usageError(Session session, ParameterException ex, String... args) {
        CommandLine cmd = ex.getCommandLine();
        Integer first = optionOrderProblem(session, cmd, args);
        if (first != null) {
            return first;
        }
        String qemuImgWords = qemuImgUsageError(cmd, ex);
        if (qemuImgWords != null) {
            // qemu-img's two lines: its message, then where to look
            session.error(qemuImgWords);
            session.err().println("Try '" + session.program() + " --help' for more information");
            if (session.debug()) {
                ex.printStackTrace(session.err());
            }
            return FAILED;
        }
        String name = cmd.getCommandSpec().qualifiedName();
        // an unknown command never gets here: LeadingOptions answers it as qemu-img does
        session.error(ex.getMessage() + " (try '" + name + " --help')");
        if (session.debug()) {
            ex.printStackTrace(session.err());
        }
        return FAILED;
    }

    /**
     * Reports the first problem qemu-img's getopt loop meets in a qemu-img subcommand's arguments, as qemu-img does,
     * and returns the exit status; {@code null} if the loop meets none or the command is imago's own.
     */
    private static Integer optionOrderProblem(Session session, CommandLine cmd, String... args) {
        if (cmd.getParent() == null || !QEMU_IMG_SUBCOMMANDS.contains(cmd.getCommandName())) {
            return null;
        }
        List<String> arguments = subcommandArguments(args);
        if (cmd.getCommandName().equals("resize")) {
            // qemu-img resize takes the last argument as the size before it reads any option (a size may be -1G)
            arguments = arguments.size() < 2 ? null : arguments.subList(0, arguments.size() - 1);
        }
        QemuOptionOrder.Problem problem = arguments == null ? new QemuOptionOrder.Usage("Not enough arguments")
                : QemuOptionOrder.firstProblem(cmd.getCommandSpec(), cmd.getCommand(), arguments);
        // instanceof tests, not a pattern switch, whose bootstrap spins a class no AOT cache keeps
        if (problem instanceof QemuOptionOrder.Usage u) {
            session.error(u.words());
            session.err().println("Try '" + session.program() + " --help' for more information");
        } else if (problem instanceof QemuOptionOrder.Refused r) {
            report(session, r.failure());
        } else {
            return null;
        }
        return FAILED;
    }

    /** The arguments after the subcommand's name: the first word {@link #subcommandsFor} takes for a command. */
    private static List<String> subcommandArguments(String... args) {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--gate")) {
                if (i + 1 < args.length && ImagoCommand.subcommand(args[i + 1]) == null) {
                    i++;
                }
            } else if (!a.startsWith("-")) {
                return List.of(args).subList(i + 1, args.length);
            }
        }
        return List.of();
    }

    /**
     * qemu-img's message for a usage error in one of its subcommands, or {@code null} to keep picocli's (imago's own
     * subcommands, io and nbd, and the errors qemu-img words per option): an unknown option (getopt's word, a
     * cluster such as {@code -qU} whole), an option without its argument and the wrong number of file names.
     */
    private static String qemuImgUsageError(CommandLine cmd, ParameterException ex) {
        if (cmd.getParent() == null || !QEMU_IMG_SUBCOMMANDS.contains(cmd.getCommandName())) {
            return null;
        }
        if (ex instanceof UnmatchedArgumentException u && u.isUnknownOption()) {
            Matcher cluster = CLUSTER.matcher(ex.getMessage());
            return "unrecognized option '" + (cluster.find() ? cluster.group(1) : u.getUnmatched().getFirst()) + "'";
        }
        Matcher optionWithout = MISSING_ARGUMENT.matcher(ex.getMessage());
        if (ex instanceof MissingParameterException && optionWithout.find()) {
            return "missing argument for option '" + optionWithout.group(1) + "'";
        }
        boolean operandMissing = ex instanceof MissingParameterException m
                && m.getMissing().stream().noneMatch(ArgSpec::isOption);
        if (cmd.getCommandName().equals("resize")) {
            return operandMissing ? "Not enough arguments" : ex instanceof UnmatchedArgumentException
                    ? "Expecting image file name and size" : null;
        }
        String operands = OPERAND_ERRORS.get(cmd.getCommandName());
        return operands != null && (operandMissing || ex instanceof UnmatchedArgumentException) ? operands : null;
    }

    /** Creates commands and mixins, handing the session to those that take one. */
    private record Factory(Session session) implements IFactory {
        @Override
        public <K> K create(Class<K> cls) throws Exception {
            for (Constructor<?> c : cls.getDeclaredConstructors()) {
                if (c.getParameterCount() == 1 && c.getParameterTypes()[0] == Session.class) {
                    return cls.cast(c.newInstance(session));
                }
            }
            return CommandLine.defaultFactory().create(cls);
        }
    }
}
