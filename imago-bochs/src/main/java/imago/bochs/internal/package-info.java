/**
 * The bochs driver's implementation: the "growing" redolog images of the Bochs emulator (bximage), read-only, as
 * QEMU 7.2's {@code bochs} driver reads them. Every integer is little-endian; a sector is 512 bytes.
 *
 * <h2>Header (512 bytes)</h2>
 * <pre>
 * off size field
 * 0   32   magic "Bochs Virtual HD Image", NUL-terminated
 * 32  16   type "Redolog", NUL-terminated
 * 48  16   subtype "Growing", NUL-terminated (QEMU reads no other subtype)
 * 64  4    version: 0x00020000, or 0x00010000 for the first layout
 * 68  4    header size: where the catalog starts (512)
 * 72  4    catalog entries (at most 1,048,576)
 * 76  4    bitmap size in bytes, per extent
 * 80  4    extent size in bytes: a power of two from 512 to 8 MiB
 * 84  4    reserved (version 2 only)
 * 88  8    disk size in bytes (at 84 in version 1); the virtual size is its whole sectors
 * </pre>
 * The catalog follows: one u32 per extent of the disk, the index of the extent's block in the file, or
 * {@code 0xffffffff} if the extent was never written. Blocks start right after the catalog; block {@code i} is the
 * extent's bitmap (its size rounded up to whole sectors), one bit per sector (bit {@code n % 8} of byte
 * {@code n / 8}: written or not), then the extent's sectors. A sector never written, or in an extent never written,
 * reads as zeroes.
 *
 * <p>Beyond QEMU, which reads whatever the header's numbers point at (zeroes past the end of the file), imago refuses
 * a catalog or block past the end of the file and a bitmap too small for its extent, each with the offset.
 */
package imago.bochs.internal;
