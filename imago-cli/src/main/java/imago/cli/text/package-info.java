/** QEMU's ways of reading and printing sizes, option lists and JSON. */
package imago.cli.text;
