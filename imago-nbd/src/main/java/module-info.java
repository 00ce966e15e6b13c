/**
 * The Network Block Device protocol: {@link imago.nbd.NbdServer} serves an open {@link imago.api.Image} to NBD
 * clients (qemu, nbdkit's and libnbd's tools, the Linux kernel) over TCP or a Unix domain socket.
 */
module imago.nbd {
    // NbdServer takes an imago.api.Image: the API's types appear in our signatures
    requires transitive imago.api;

    exports imago.nbd;
}
