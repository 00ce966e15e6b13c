/**
 * The NBD server's public face: {@link imago.nbd.NbdServer} and its {@link imago.nbd.NbdServer.Builder}. The
 * protocol itself lives in a package that is not exported.
 */
package imago.nbd;
