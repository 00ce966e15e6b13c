/** Local files as imago storage: positional I/O, and through java.lang.foreign hole punching, SEEK_DATA/SEEK_HOLE, O_DIRECT and qemu-compatible image locks. */
module imago.storage.file {
    requires imago.api;
    requires org.slf4j;

    provides imago.api.spi.StorageProvider with imago.storage.file.FileStorageProvider;
}
