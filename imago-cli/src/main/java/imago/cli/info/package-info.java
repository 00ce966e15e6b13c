/** {@code qemu-img info}'s human and JSON reports. */
package imago.cli.info;
