/** The parallels format driver: Parallels (Virtuozzo) expandable disk images. */
module imago.parallels {
    requires imago.api;

    provides imago.api.spi.FormatDriver with imago.parallels.internal.ParallelsFormatDriver;
}
