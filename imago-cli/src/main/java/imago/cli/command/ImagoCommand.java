package imago.cli.command;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.HelpCommand;
import picocli.CommandLine.Mixin;

/** {@code imago}: the top-level command, which only dispatches to its subcommands. */
@Command(name = "imago", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        subcommands = {InfoCommand.class, CreateCommand.class, ConvertCommand.class, IoCommand.class, MapCommand.class,
                CompareCommand.class, CheckCommand.class, SnapshotCommand.class, ResizeCommand.class, BenchCommand.class,
                CommitCommand.class, RebaseCommand.class, MeasureCommand.class, NbdCommand.class, HelpCommand.class},
        description = "Creates, inspects, converts and edits VM disk images (qcow2, raw, cow), "
                + "with qemu-img's and qemu-io's syntax, output and exit codes.",
        footer = {"", "Exit status: 0 on success, 1 on any error (one line on standard error); compare: 0 identical, "
                + "1 different, 2 or more when an image cannot be opened or read."})
public final class ImagoCommand implements Callable<Integer> {
    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    ImagoCommand() {
    }

    @Override
    public Integer call() {
        throw new CliException(null, "Not enough arguments (try 'imago --help')");
    }
}
