/**
 * The file storage itself ({@link imago.storage.file.internal.FileStorage}), the parts it hands work to
 * (opening, image locks, space operations, direct and channel I/O, errors), and its libc binding, one
 * class per concern ({@code LibC}, {@code LibcLocks}, {@code LibcSpace}, {@code LibcData}).
 */
package imago.storage.file.internal;
