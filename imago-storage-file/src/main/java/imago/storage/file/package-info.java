/**
 * The {@code file} storage provider. Not exported: users reach it through
 * {@link java.util.ServiceLoader} as an {@link imago.api.spi.StorageProvider}.
 *
 * <p>Native calls ({@code fallocate}, {@code lseek(SEEK_DATA/SEEK_HOLE)}, qemu-compatible OFD image locks, O_DIRECT) go
 * through {@code java.lang.foreign}; run with {@code --enable-native-access=imago.storage.file} (or
 * {@code ALL-UNNAMED} on the class path). Where native access or the file system is missing, the
 * storage falls back to portable {@link java.nio.channels.FileChannel} I/O.
 */
package imago.storage.file;
