package imago.cli.command;

import java.util.List;

/**
 * A qemu-img subcommand's checks of option values that qemu-img makes while it reads the options, in its getopt
 * loop, before it counts the file names or opens anything. {@link QemuOptionOrder} replays them in the order the
 * options were given, so a command line with several problems gets qemu-img's first message.
 */
interface QemuOptionChecks {
    /**
     * Checks one option as qemu-img does when its getopt loop reaches it.
     *
     * @param option the option's longest name ({@code -c}, {@code --start-offset})
     * @param value its argument, or {@code null} for an option without one
     * @param before the longest names of the options given before it, in order
     * @throws CliException with the message the command's run reports for the same value
     */
    void checkOption(String option, String value, List<String> before);
}
