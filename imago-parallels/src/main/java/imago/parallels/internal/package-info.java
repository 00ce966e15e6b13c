/**
 * The parallels driver's implementation: Parallels (Virtuozzo) expandable images as QEMU's
 * docs/interop/parallels.txt lays them out, read and written as QEMU 7.2's {@code parallels} driver does. Every
 * integer is little-endian; a sector is 512 bytes.
 *
 * <h2>Header (64 bytes at offset 0)</h2>
 * <pre>
 * off size field
 * 0   16   magic "WithoutFreeSpace" (catalog entries count sectors; size: low 32 bits only)
 *          or "WithouFreSpacExt" (entries count clusters; what QEMU writes)
 * 16  4    version 2            20 4 heads (16 from QEMU)     24 4 cylinders (size / 512 / 16 / 32)
 * 28  4    tracks: sectors per cluster (not 0; QEMU: at most INT32_MAX / 513)
 * 32  4    catalog entries (QEMU: at most INT_MAX / 4)
 * 36  8    virtual size in sectors
 * 44  4    in use: 0x746F6E59 while a writer has the image open, else 0
 * 48  4    first data sector (QEMU: the catalog rounded up to whole clusters)
 * 52  4    flags                56 8 format extension cluster, in sectors (0: none)
 * 64  4×n  the catalog (BAT): per cluster of the disk its place in the file, 0 = not allocated
 * </pre>
 *
 * <h2>Format extension cluster</h2>
 * {@code u64 magic 0xAB234CEF23DCEA87, u8[16] MD5 of the rest of the cluster}, then features
 * {@code u64 magic, u64 flags, u32 data size, u32 unused, data padded to 8}, ended by a magic of 0. QEMU knows the
 * dirty bitmap (0x20385FAE252CB34A) only, and reads the extension only when it opens the image read-only.
 *
 * <h2>Write order</h2>
 * A writable open sets the in-use mark and syncs it before anything else changes (an image whose mark is set is
 * refused for writing, as by QEMU 7.2, until {@code check -r all}). A new cluster goes at the end of the data area,
 * zeroed, and its catalog entry is written at the next flush after a sync (the shared
 * {@link imago.api.spi.BlockTable}). A clean close writes the catalog, sets the file's length to the end of the data
 * area and clears the mark. Zero writes leave unallocated clusters alone and write zeroes into allocated ones
 * (QEMU 7.2's parallels has neither zero writes nor discard; {@code write -z -n} is refused as there).
 */
package imago.parallels.internal;
