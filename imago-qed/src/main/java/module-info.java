/** The qed format driver: QEMU Enhanced Disk images. */
module imago.qed {
    requires imago.api;

    provides imago.api.spi.FormatDriver with imago.qed.internal.QedFormatDriver;
}
