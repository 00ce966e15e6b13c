package imago.cli.command;

import picocli.CommandLine.Option;

/** The {@code -f FMT} option of the commands that open one existing image: its format, or probing. */
final class FormatOption {
    @Option(names = "-f", paramLabel = "FMT", description = "The image format (default: probe it).")
    private String format;

    FormatOption() {
    }

    /** The option as {@link DirectRun} parsed it: {@code format}, or {@code null} to probe. */
    FormatOption(String format) {
        this.format = format;
    }

    /** The format given with {@code -f}, or {@code null} to probe it. */
    String name() {
        return format;
    }
}
