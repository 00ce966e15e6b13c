/**
 * The front door: opens images by probing their format with every installed driver, and opens the
 * files they name (backing files, data files) only through an {@link imago.api.OpenGate}.
 */
module imago.probe {
    requires transitive imago.api;
    requires org.slf4j;

    exports imago.probe;

    uses imago.api.spi.FormatDriver;
    uses imago.api.spi.StorageProvider;
}
