/** The qcow format driver: QEMU's original copy-on-write images (qcow version 1). */
module imago.qcow {
    requires imago.api;

    provides imago.api.spi.FormatDriver with imago.qcow.internal.QcowFormatDriver;
}
