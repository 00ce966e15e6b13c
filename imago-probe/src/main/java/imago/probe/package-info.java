/**
 * {@link imago.probe.Imago}: open, probe and create images with the installed format drivers and
 * storage providers.
 */
package imago.probe;
