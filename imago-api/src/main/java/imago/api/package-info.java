/**
 * The user API: an open {@link imago.api.Image} chain, its {@link imago.api.Mapping}s and
 * {@link imago.api.Extent}s, option records and the exception family. Images are opened through
 * {@code imago.probe.Imago}; nothing here names a format.
 */
package imago.api;
