/**
 * The dmg driver's implementation: Apple's UDIF disk images, read-only, as QEMU 7.2's {@code dmg} driver reads them.
 * Integers are big-endian; a sector is 512 bytes.
 *
 * <h2>Trailer ("koly", 512 bytes, at the end of the file)</h2>
 * Found as QEMU finds it: the magic {@code koly} anywhere in the last 515 bytes (a file's length need not be a whole
 * number of sectors); a trailer cut short by the end of the file in its last sector reads on as zeroes. Fields used: data fork offset (0x18), resource fork offset and length (0x28, 0x30), XML
 * property list offset and length (0xd8, 0xe0), sector count (0x1ec: the virtual size in sectors).
 *
 * <h2>Block tables ("mish")</h2>
 * Read from the resource fork when it has a length (a resource data offset at 0, its length at 8, then resources,
 * each a u32 length and its bytes), else from the XML property list, each {@code <data>} element base64-decoded
 * as glib decodes it (characters outside the alphabet skipped, a last lone character dropped).
 * A table that does not start with {@code mish} or is shorter than 244 bytes is skipped. In a table: the first sector
 * (8), the data offset (0x18) added to the data fork offset, then from 204 one 40-byte chunk per entry: type,
 * comment, first sector and sector count (relative to the table's), offset (relative to the table's data offset)
 * and length in the file.
 *
 * <h2>Chunk types</h2>
 * {@code 0} zeroes, {@code 1} raw, {@code 2} ignored (reads as zeroes), {@code 0x80000005} zlib,
 * {@code 0x80000006} bzip2, {@code 0x80000007} lzfse, {@code 0x80000004} ADC, {@code 0x7ffffffe} comment,
 * {@code 0xffffffff} last entry. As in QEMU, chunks of types it cannot read are left out of the table (comments and
 * last entries silently), so reading their sectors fails; imago names the type. bzip2, lzfse and ADC chunks are not
 * read: QEMU reads bzip2 and lzfse through optional modules that are not in Debian's qemu-utils 7.2 (they are in
 * qemu-block-extra), and no
 * well-kept Java library for them is worth its weight here (Apache Commons Compress pulls in java.desktop and three
 * more libraries for bzip2 alone).
 *
 * <p>QEMU's bounds are kept: a chunk of at most 64 MiB in the file and, unless zeroes, 64 MiB of sectors; an XML
 * property list of at most 16 MiB (imago bounds the resource fork the same way). Beyond QEMU, chunks that overlap
 * are refused when the image is opened, and a chunk past the end of the file when it is read.
 */
package imago.dmg.internal;
