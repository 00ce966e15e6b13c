/** qemu-io 7.2's command language, for {@code imago io} and a {@code qemu-io} symlink to the launcher. */
package imago.cli.io;
