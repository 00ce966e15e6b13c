/**
 * The Network Block Device protocol: {@link imago.nbd.NbdServer} serves an open {@link imago.api.Image} to NBD
 * clients (qemu, nbdkit's and libnbd's tools, the Linux kernel) over TCP or a Unix domain socket, and NBD exports
 * open as storages of scheme {@code nbd} ({@code nbd://HOST[:PORT]/EXPORT}, {@code nbd+unix:///EXPORT?socket=PATH}),
 * so that every format imago reads can be read and written over the network.
 */
module imago.nbd {
    // NbdServer takes an imago.api.Image: the API's types appear in our signatures
    requires transitive imago.api;

    exports imago.nbd;

    provides imago.api.spi.StorageProvider with imago.nbd.internal.client.NbdStorageProvider;
}
