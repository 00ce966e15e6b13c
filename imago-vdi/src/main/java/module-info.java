/** The vdi format driver: VirtualBox disk images (dynamic and static). */
module imago.vdi {
    requires imago.api;

    provides imago.api.spi.FormatDriver with imago.vdi.internal.VdiFormatDriver;
}
