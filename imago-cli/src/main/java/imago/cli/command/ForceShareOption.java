package imago.cli.command;

import picocli.CommandLine.Option;

/** The {@code -U}/{@code --force-share} option: open the image without taking its lock. */
final class ForceShareOption {
    @Option(names = {"-U", "--force-share"}, description = "Open without taking the image's lock.")
    private boolean forceShare;

    ForceShareOption() {
    }

    /** The option as {@link DirectRun} parsed it. */
    ForceShareOption(boolean given) {
        this.forceShare = given;
    }

    /** Whether {@code -U} was given. */
    boolean given() {
        return forceShare;
    }
}
