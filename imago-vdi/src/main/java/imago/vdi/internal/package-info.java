/**
 * The vdi driver's implementation: VirtualBox disk images (version 1.1, the layout VirtualBox publishes), read and
 * written as QEMU 7.2's {@code vdi} driver reads and writes them. Every integer is little-endian.
 *
 * <h2>Header (512 bytes at offset 0)</h2>
 * <pre>
 * off   size field
 * 0x000 64   pre-header text ("&lt;&lt;&lt; QEMU VM Virtual Disk Image &gt;&gt;&gt;\n" from QEMU; VirtualBox writes its own)
 * 0x040 4    signature 0xbeda107f      0x044 4 version 0x00010001 (1.1; QEMU reads no other)
 * 0x048 4    header size (0x180)       0x04c 4 image type: 1 dynamic, 2 static
 * 0x050 4    image flags               0x054 256 description
 * 0x154 4    block map offset (sector aligned; 512)
 * 0x158 4    data offset (sector aligned; after the map, padded to a sector)
 * 0x15c 4    cylinders  0x160 4 heads  0x164 4 sectors (legacy geometry; QEMU writes 0)
 * 0x168 4    sector size (512)         0x16c 4 unused
 * 0x170 8    disk size (bytes; QEMU rounds an odd one up to a sector)
 * 0x178 4    block size (1 MiB; QEMU reads no other)   0x17c 4 block extra data (0)
 * 0x180 4    blocks in image (the map's entries)       0x184 4 blocks allocated
 * 0x188 16   image UUID   0x198 16 last snapshot UUID   0x1a8 16 link UUID   0x1b8 16 parent UUID
 *            (link and parent are set only in differencing images, which QEMU and imago refuse)
 * </pre>
 *
 * <h2>Block map</h2>
 * One 32-bit entry per block: a block index {@code i} (the block is at data offset + i &times; block size),
 * 0xFFFFFFFF (never written: reads as zero) or 0xFFFFFFFE (discarded by VirtualBox: reads as zero). Blocks are
 * dense: a new one takes the index "blocks allocated" gives, and the count goes up by one. A static image maps block
 * {@code i} to index {@code i} from its creation.
 *
 * <h2>Write order</h2>
 * A new block is zeroed and written where its index puts it; at the next flush the data is synced, the header's
 * count is written and synced, then the changed map sectors (the shared {@link imago.api.spi.BlockTable}). The two
 * sectors cannot change at once: a power loss between them leaves the count ahead of the entries, which
 * {@code qemu-img check} reports as an "allocated blocks mismatch" but which loses nothing (the block the count
 * skipped is never named), and a writable open corrects it when the blocks in use are dense. Zero writes leave
 * unallocated blocks alone and write zeroes into allocated ones (QEMU's vdi has no zero writes, and VDI cannot free
 * a block without a hole in its dense indices); discard does nothing, as in QEMU.
 */
package imago.vdi.internal;
