/**
 * The file storage itself ({@link imago.storage.file.internal.FileStorage}) and its libc binding.
 */
package imago.storage.file.internal;
