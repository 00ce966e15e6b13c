/** The {@code imago} command's entry point, {@link imago.cli.Main}. */
package imago.cli;
