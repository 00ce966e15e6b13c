/**
 * The qcow driver's implementation: QEMU's original copy-on-write format (version 1), read and written as QEMU
 * 7.2's {@code qcow} driver reads and writes it. Every integer is big-endian.
 *
 * <h2>Header (48 bytes)</h2>
 * <pre>
 * off size field
 * 0   4    magic "QFI\xfb"             4  4 version 1
 * 8   8    backing_file_offset (0: none)  16 4 backing_file_size (at most 1023)
 * 20  4    mtime (0)                   24 8 size: the virtual size (read in whole sectors)
 * 32  1    cluster_bits (9 to 16)      33 1 l2_bits: log2 of L2 entries (6 to 13)
 * 34  2    padding                     36 4 crypt_method: 0 none, 1 AES (refused)
 * 40  8    l1_table_offset
 * </pre>
 *
 * <h2>Tables</h2>
 * The L1 table has {@code ceil(size / (cluster * 2^l2_bits))} entries, each an L2 table's offset or 0; an L2 table
 * has {@code 2^l2_bits} entries: 0 (unallocated), a data cluster's offset, or with bit 63 set a compressed cluster
 * (offset in the low {@code 63 - cluster_bits} bits, compressed length in the bits above; raw deflate of exactly
 * one cluster). qemu-img makes 4 KiB clusters and 512-entry tables, or with a backing file 512-byte clusters and
 * 4096-entry tables. New tables and clusters go at the end of the file rounded up to a cluster (past everything
 * the tables name if that is further: a file cut short, which reads past its end as zeroes).
 */
package imago.qcow.internal;
