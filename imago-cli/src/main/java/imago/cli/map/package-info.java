/** {@code qemu-img map}'s walk over an image's extents and its two output forms. */
package imago.cli.map;
