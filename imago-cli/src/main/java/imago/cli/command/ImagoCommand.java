package imago.cli.command;

import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.HelpCommand;
import picocli.CommandLine.Mixin;

/**
 * {@code imago}: the top-level command, which only dispatches to its subcommands. They are not in the
 * {@code @Command} annotation: {@link Cli} adds only the one a command line names (picocli's model of
 * all of them costs more than the JVM's start-up), and all of them when it names none.
 */
@Command(name = "imago", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Creates, inspects, converts and edits VM disk images (qcow2, raw, cow), "
                + "with qemu-img's and qemu-io's syntax, output and exit codes.",
        footer = {"", "Exit status: 0 on success, 1 on any error (one line on standard error); compare: 0 identical, "
                + "1 different, 2 or more when an image cannot be opened or read."})
public final class ImagoCommand implements Callable<Integer> {
    /** A subcommand: its name and its picocli command class. */
    record Subcommand(String name, Class<?> type) {
    }

    /**
     * The subcommands, in the order {@code --help} lists them. The names are spelt out rather than read
     * from each class's {@code @Command}: reading an annotation spins a proxy class, part of the cost
     * this list avoids (a test checks that they agree).
     */
    static final List<Subcommand> SUBCOMMANDS = List.of(new Subcommand("info", InfoCommand.class),
            new Subcommand("create", CreateCommand.class), new Subcommand("convert", ConvertCommand.class),
            new Subcommand("io", IoCommand.class), new Subcommand("map", MapCommand.class),
            new Subcommand("compare", CompareCommand.class), new Subcommand("check", CheckCommand.class),
            new Subcommand("snapshot", SnapshotCommand.class), new Subcommand("resize", ResizeCommand.class),
            new Subcommand("bench", BenchCommand.class), new Subcommand("commit", CommitCommand.class),
            new Subcommand("rebase", RebaseCommand.class), new Subcommand("measure", MeasureCommand.class),
            new Subcommand("nbd", NbdCommand.class), new Subcommand("bitmap", BitmapCommand.class),
            new Subcommand("amend", AmendCommand.class), new Subcommand("dd", DdCommand.class),
            new Subcommand("help", HelpCommand.class));

    private final Session session;

    ImagoCommand(Session session) {
        this.session = session;
    }

    /**
     * {@code --gate} and {@code --debug}, as the subcommands take them. Only imago's own options are taken before the
     * command ({@link LeadingOptions} refuses the others, {@code --object} and {@code --image-opts} included, as
     * qemu-img refuses them there).
     */
    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private ImagoOptions own;

    /** The subcommand called {@code name}, or {@code null}. */
    static Subcommand subcommand(String name) {
        for (Subcommand s : SUBCOMMANDS) {
            if (s.name().equals(name)) {
                return s;
            }
        }
        return null;
    }

    @Override
    public Integer call() {
        throw new CliException(null, "Not enough arguments\nTry '" + session.program()
                + " --help' for more information");
    }
}
