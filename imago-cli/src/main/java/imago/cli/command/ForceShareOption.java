package imago.cli.command;

import picocli.CommandLine.Option;

/** The {@code -U}/{@code --force-share} option: open the image without taking its lock. */
final class ForceShareOption {
    @Option(names = {"-U", "--force-share"}, description = "Open without taking the image's lock.")
    private boolean forceShare;

    ForceShareOption() {
    }

    /** Whether {@code -U} was given. */
    boolean given() {
        return forceShare;
    }
}
