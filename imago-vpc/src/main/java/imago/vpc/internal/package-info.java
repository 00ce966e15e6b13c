/**
 * The vpc driver's implementation: VHD images as Microsoft's "Virtual Hard Disk Image Format Specification"
 * 1.0 lays them out, read and written as QEMU 7.2's {@code vpc} driver reads and writes them. Every integer is
 * big-endian; a sector is 512 bytes.
 *
 * <h2>Hard disk footer (512 bytes)</h2>
 * <pre>
 * off size field
 * 0   8    cookie "conectix"
 * 8   4    features (bit 1 "reserved", always set)
 * 12  4    file format version 0x00010000
 * 16  8    data offset: the dynamic header's offset; all ones for a fixed disk
 * 24  4    time stamp, seconds since 2000-01-01 00:00:00 UTC
 * 28  4    creator application ("qemu", "qem2", "vpc ", "win ", "d2v ", "CTXS", "tap\0", ...)
 * 32  4    creator version      36 4 creator host OS ("Wi2k", "Mac ")
 * 40  8    original size        48 8 current size
 * 56  4    geometry: cylinders u16, heads u8, sectors per track u8
 * 60  4    disk type: 2 fixed, 3 dynamic, 4 differencing
 * 64  4    checksum: one's complement of the byte sum of the footer with this field zero
 * 68  16   unique id            84 1 saved state       85 427 reserved
 * </pre>
 * A fixed disk is its data followed by the footer. A dynamic or differencing disk starts with a copy of the
 * footer, which is the one read (as QEMU reads it); the footer at the end moves with every block allocated.
 *
 * <h2>Dynamic disk header (1024 bytes, at the footer's data offset)</h2>
 * <pre>
 * 0   8    cookie "cxsparse"     8 8 data offset (all ones)
 * 16  8    table offset (the BAT) 24 4 header version 0x00010000
 * 28  4    max table entries     32 4 block size (a power of two; 2 MiB by default)
 * 36  4    checksum (as the footer's)
 * 40  16   parent unique id      56 4 parent time stamp      60 4 reserved
 * 64  512  parent unicode name, UTF-16 big-endian
 * 576 8*24 parent locators: platform code u32, data space u32, data length u32, reserved u32, data offset u64
 * 768 256  reserved
 * </pre>
 * Platform codes: {@code W2ru} (relative path, UTF-16 little-endian), {@code W2ku} (absolute path, UTF-16
 * little-endian), {@code MacX} (a file URL, UTF-8), {@code Wi2r}/{@code Wi2k} (deprecated), {@code Mac }
 * (an alias blob). The data space is in bytes for what Virtual PC and Hyper-V wrote and in sectors by the
 * specification; only the data length is used.
 *
 * <h2>BAT and blocks</h2>
 * The BAT holds one u32 per block: the sector number where the block's sector bitmap starts, or all ones for a
 * block that is not allocated. A block is its bitmap ({@code roundUp(blockSize / 4096, 512)} bytes, QEMU's
 * formula) followed by {@code blockSize} bytes of data. Bit {@code n} of the bitmap (most significant bit of
 * byte 0 first) says whether sector {@code n} of the block is in this file. QEMU reads a dynamic disk's
 * allocated blocks whole, bitmap or not, and imago does the same; a differencing disk reads a sector whose bit
 * is clear from its parent.
 *
 * <h2>Virtual size (QEMU's rule)</h2>
 * {@code cylinders * heads * sectorsPerTrack * 512}, unless the creator application is {@code win },
 * {@code qem2}, {@code d2v }, {@code CTXS} or {@code tap\0}, or the geometry is the largest one (65535/16/255),
 * or the open option {@code force_size_calc=current_size} says so: then the current size, rounded down to a
 * sector. {@code force_size_calc=chs} chooses the geometry for any creator except at the largest geometry.
 *
 * <h2>Writes</h2>
 * Allocating a block of a dynamic disk: the footer is first written after the new block (so the file always
 * ends in a footer and never ends before a block the BAT names), then the data, then the block's bitmap over
 * the old footer; the new BAT entry is kept in memory and written on flush, after a sync that makes the
 * blocks it points at durable. A crash therefore loses at most blocks allocated since the last flush, whose
 * space the next allocation reuses.
 */
package imago.vpc.internal;
