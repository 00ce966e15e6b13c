package imago.cli.command;

/**
 * A subcommand that parses its own options from its operands, in order, as qemu-img's {@code getopt_long}
 * does (so that its messages for bad options are qemu-img's): picocli hands it every argument it does not
 * know itself ({@code --help}, {@code --version} and the global options) as a positional parameter.
 */
interface GetoptCommand {
}
