/** The cloop format driver: compressed loop images (Knoppix), read-only (as QEMU reads them). */
module imago.cloop {
    requires imago.api;

    provides imago.api.spi.FormatDriver with imago.cloop.internal.CloopFormatDriver;
}
