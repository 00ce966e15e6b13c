/** The sparse, parallel copy behind {@code imago convert}. */
package imago.cli.convert;
