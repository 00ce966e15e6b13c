/** The raw format driver: the guest disk byte for byte, the weakest probing fallback. */
module imago.raw {
    requires imago.api;

    provides imago.api.spi.FormatDriver with imago.raw.internal.RawFormatDriver;
}
