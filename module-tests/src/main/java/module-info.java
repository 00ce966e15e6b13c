/**
 * imago's cross-module tests, and in its main code a third-party format plug-in that needs nothing
 * but the SPI: proof that a format is added by shipping one module.
 */
module imago.moduletests {
    requires imago.api;

    provides imago.api.spi.FormatDriver with imago.moduletests.plugin.TstFormatDriver;
}
