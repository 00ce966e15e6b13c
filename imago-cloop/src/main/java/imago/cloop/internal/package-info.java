/**
 * The cloop driver's implementation: compressed loop images (the Linux {@code cloop} module's format, as Knoppix
 * shipped it), read-only, as QEMU 7.2's {@code cloop} driver reads them. Integers are big-endian.
 *
 * <h2>Layout</h2>
 * <pre>
 * off       size     field
 * 0         128      a shell script: "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 &amp;&amp; mount -r -t iso9660
 *                    /dev/cloop $1\n", padded (QEMU's probe matches this text; with the format named, any is read)
 * 128       4        block size: a multiple of 512, at most 64 MiB
 * 132       4        block count n
 * 136       8(n+1)   offsets: block i is the zlib stream in [offsets[i], offsets[i+1]), non-decreasing
 * </pre>
 * Each block inflates to exactly the block size; the virtual size is {@code n} blocks. QEMU's open-time refusals
 * (block size, block count, offsets decreasing or more than 128 MiB apart) keep its words; beyond QEMU, which reads
 * zeroes past the end of the file, an offsets table or block past the end is refused with its offset, and a block
 * that inflates to more or less than the block size says so.
 */
package imago.cloop.internal;
