/** The {@code imago} command ({@link imago.cli.Main}): qemu-img and qemu-io compatible subcommands. */
module imago.cli {
    requires imago.nbd;
    requires imago.probe;
    requires info.picocli;

    // picocli reads and sets the annotated fields of the commands reflectively
    opens imago.cli.command to info.picocli;
}
