/**
 * imago's user API ({@code imago.api}) and plug-in SPI ({@code imago.api.spi}), and the one generic
 * read/write path that every format shares.
 */
module imago.api {
    requires org.slf4j;

    exports imago.api;
    exports imago.api.spi;
}
