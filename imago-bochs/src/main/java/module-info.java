/** The bochs format driver: Bochs' growing "redolog" images, read-only (as QEMU reads them). */
module imago.bochs {
    requires imago.api;

    provides imago.api.spi.FormatDriver with imago.bochs.internal.BochsFormatDriver;
}
