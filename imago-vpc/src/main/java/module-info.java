/** The vpc format driver: Microsoft Virtual PC / Virtual Server VHD images (fixed, dynamic, differencing). */
module imago.vpc {
    requires imago.api;
    requires org.slf4j;

    provides imago.api.spi.FormatDriver with imago.vpc.internal.VpcFormatDriver;
}
