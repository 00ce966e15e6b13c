/** The dmg format driver: Apple's UDIF disk images, read-only (as QEMU reads them). */
module imago.dmg {
    requires imago.api;

    provides imago.api.spi.FormatDriver with imago.dmg.internal.DmgFormatDriver;
}
