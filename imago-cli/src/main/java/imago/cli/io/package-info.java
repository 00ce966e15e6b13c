/** qemu-io's command language, for {@code imago io}. */
package imago.cli.io;
