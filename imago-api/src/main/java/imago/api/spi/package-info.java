/**
 * The plug-in SPI. Storage back ends implement {@link imago.api.spi.StorageProvider} and
 * {@link imago.api.spi.Storage}; formats implement {@link imago.api.spi.FormatDriver} and
 * {@link imago.api.spi.FormatInstance}, describing guest bytes as {@link imago.api.Mapping}s while
 * {@link imago.api.spi.LayeredImage} does all the I/O. {@link imago.api.OpenGate} decides which
 * files an image may name. Providers are found with {@link java.util.ServiceLoader}.
 */
package imago.api.spi;
