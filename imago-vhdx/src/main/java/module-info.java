/** The vhdx format driver: Microsoft Hyper-V VHDX images (fixed, dynamic, differencing). */
module imago.vhdx {
    requires imago.api;
    requires org.slf4j;

    provides imago.api.spi.FormatDriver with imago.vhdx.internal.VhdxFormatDriver;
}
