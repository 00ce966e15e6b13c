/**
 * The qed driver's implementation: QEMU Enhanced Disk images as QEMU's docs/interop/qed_spec.txt lays them out,
 * read and written as QEMU 7.2's {@code qed} driver reads and writes them. Every integer is little-endian.
 *
 * <h2>Header (cluster 0, 64 bytes)</h2>
 * <pre>
 * off size field
 * 0   4    magic "QED\0"
 * 4   4    cluster_size: a power of two, 4 KiB to 64 MiB
 * 8   4    table_size: clusters per L1 or L2 table, a power of two, 1 to 16
 * 12  4    header_size: clusters before the first table or data cluster
 * 16  8    features: 1 backing file, 2 need check (not closed cleanly), 4 backing file is raw (no probing)
 * 24  8    compat_features (none known)
 * 32  8    autoclear_features (none known: a writer clears them)
 * 40  8    l1_table_offset
 * 48  8    image_size: the virtual size, a multiple of 512
 * 56  4    backing_filename_offset   60 4 backing_filename_size (the name, not terminated, inside the header)
 * </pre>
 *
 * <h2>Tables</h2>
 * The L1 table and every L2 table hold {@code table_size * cluster_size / 8} 64-bit entries. An L1 entry is an L2
 * table's offset or 0; an L2 entry is a data cluster's offset, 0 (unallocated: read the backing file, or zeroes) or
 * 1 (a zero cluster). A guest offset splits into L1 index, L2 index and the offset in the cluster. Clusters are
 * allocated at the end of the file (past everything the tables name if that is further: a file cut short, which
 * reads past its end as zeroes), data first, then a new L2 table.
 */
package imago.qed.internal;
