/** The picocli commands: {@code imago} and its subcommands, and how failures become one line. */
package imago.cli.command;
