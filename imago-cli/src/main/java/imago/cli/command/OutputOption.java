package imago.cli.command;

import picocli.CommandLine.Option;

/** The {@code --output human|json} option of the commands that report, with qemu-img's check of its value. */
final class OutputOption {
    @Option(names = "--output", paramLabel = "human|json", description = "Output format (default: human).")
    private String output = "human";

    OutputOption() {
    }

    /** The option as {@link DirectRun} parsed it: the value given, or {@code human}. */
    OutputOption(String output) {
        this.output = output;
    }

    /**
     * Whether JSON was asked for.
     *
     * @throws CliException with qemu-img's message if the value is neither human nor json
     */
    boolean json() {
        return switch (output) {
            case "json" -> true;
            case "human" -> false;
            default -> throw new CliException(null, "--output must be used with human or json as argument.");
        };
    }
}
