/**
 * Sparse in-memory storage. {@link imago.storage.memory.MemoryStorage} keeps named byte stores in a
 * process-wide registry, so that an image created in memory can later be opened by its
 * {@code memory:} location through {@link imago.storage.memory.MemoryStorageProvider}, and names
 * stored inside images (backing files) resolve to other memory storages.
 *
 * <p>Content is held in fixed-size chunks that are allocated on first write; chunks never written (or
 * dropped by zeroing, discarding or shrinking) read as zeroes and are reported as holes.
 */
package imago.storage.memory;
