/** The cow format driver (User-Mode Linux and QEMU copy-on-write images). */
module imago.cow {
    requires imago.api;
    requires org.slf4j;

    provides imago.api.spi.FormatDriver with imago.cow.internal.CowFormatDriver;
}
