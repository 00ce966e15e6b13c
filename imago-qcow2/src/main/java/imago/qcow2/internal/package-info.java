/**
 * The qcow2 driver's implementation: qcow2 v2 and v3 images (QEMU's docs/interop/qcow2.txt): reading,
 * creation (byte for byte as qemu-img 7.2 creates them), allocating writes (copy-on-write from the
 * backing chain, zero clusters, compressed clusters and clusters or L2 tables shared with internal
 * snapshots, which stay intact), compressed writes of whole clusters into unallocated ones (as
 * {@code qemu-img convert -c}: deflate with a 4 KiB window or zstd, packed byte-wise), zero writes, discard
 * growing (with preallocation metadata, falloc or full, on create too) and shrinking. What the writer cannot keep
 * consistent yet is refused with an {@link imago.api.UnsupportedFeatureException} before anything
 * changes: writable opens of images with extended L2 entries, an external data file, persistent
 * bitmaps, the dirty or the corrupt bit, and of a snapshot; refcount table growth past QEMU's 8 MiB
 * limit or past what one new refcount block can describe; growing an image with a backing file; preallocation with extended L2 entries;
 * creating with an external data file or with an L1 table past the first refcount block.
 *
 * <h2>Write ordering</h2>
 * Metadata is written through, never cached dirty. Clusters are reserved in batches
 * ({@link imago.qcow2.internal.Qcow2Refcounts}): refcount 1 written and synced before any table points
 * at them; unused reservations are given back on flush. A new refcount block is synced before its
 * refcount table entry, a new L2 table before its L1 entry; a grown refcount table (copy and switch:
 * new block and table at the first uncovered cluster) before the header points at it. An allocating write's L2 entry is written
 * only after its data ({@code completeWrite}), and rolled back (cluster returned) if the data write
 * fails; a write that copied part of the cluster syncs first (as QEMU's perform_cow), so that a power
 * loss cannot lose bytes the guest never wrote. One allocation lock is held from
 * {@code ensureDataMapping} to {@code completeWrite}. An L2 or L1 entry that drops a reference (zeroing,
 * discard, rewriting a compressed or shared cluster, copying a shared L2 table, moving the L1 table) is
 * written first; the refcount drops on the next flush, after a sync, while in-place writes are excluded.
 * Reserved clusters past the end of the file are covered by growing the file before the sync, since a
 * reference past the end of the file is an error for qemu-img check. Compressed data is packed into runs
 * of clusters whose refcounts are first set, and synced, to the most references a cluster can get; the
 * compressed bytes are written before the L2 entry; a cluster gets its exact refcount once the run moved
 * past it, the rest of the run on flush before any refcount drops, so a crash can only leak. Preallocation
 * allocates runs of clusters (reserving or zeroing the file's space first) and syncs them before the L2
 * entries of each table point at them. Shrinking clears the L2 entries past the new end and the L1 entries
 * past it (zeroes, synced) before their clusters' refcounts drop, then writes the new size, drops refcount
 * blocks that count nothing but themselves from the (synced) refcount table, and cuts the file after the
 * last cluster in use, as QEMU's qcow2_co_truncate, qcow2_shrink_l1_table and qcow2_shrink_reftable do.
 *
 * <h2>Layout</h2>
 * All integers are big-endian.
 * <pre>
 * Header (cluster 0)                         Qcow2Header
 *   0  u32 magic "QFI\xfb"        4  u32 version (2, 3)
 *   8  u64 backing_file_offset   16  u32 backing_file_size (&lt;= 1023, inside cluster 0)
 *  20  u32 cluster_bits (9..21)  24  u64 size (virtual bytes)
 *  32  u32 crypt_method (0; 1 AES and 2 LUKS are refused)
 *  36  u32 l1_size               40  u64 l1_table_offset (cluster aligned)
 *  48  u64 refcount_table_offset 56  u32 refcount_table_clusters
 *  60  u32 nb_snapshots          64  u64 snapshots_offset
 *  -- v2 ends at 72 --
 *  72  u64 incompatible (0 dirty, 1 corrupt, 2 data file, 3 compression type, 4 extended L2)
 *  80  u64 compatible (0 lazy refcounts)   88  u64 autoclear (0 bitmaps, 1 data file raw)
 *  96  u32 refcount_order (0..6)          100  u32 header_length (&gt;= 104, multiple of 8, &lt;= cluster)
 * 104  u8  compression_type (0 deflate, 1 zstd; when header_length &gt; 104)
 *
 * Header extensions (from header_length, 8-aligned, up to type 0)   Qcow2Extension
 *   u32 type, u32 length, data, padding
 *   0xE2792ACA backing format   0x6803F857 feature names (48-byte entries: u8 type, u8 bit, name[46])
 *   0x23852875 bitmaps          0x0537BE77 encryption header   0x44415441 external data file name
 *
 * L1 entry (u64)       bit 63 COPIED | bits 9..55 L2 table offset | other bits reserved (0)
 * L2 entry (u64)       bit 63 COPIED | bit 62 compressed | bits 9..55 host cluster offset
 *                      | bit 0 reads as zero (not with extended L2) | bits 1..8, 56..61 reserved
 * Extended L2 entry    the u64 above + u64 bitmap: bits 0..31 subcluster allocated,
 *                      bits 32..63 subcluster reads as zero (both set: corrupt)
 * Compressed (x = 62 - (cluster_bits - 8))
 *                      bits 0..x-1 host byte offset | bits x..61 (sectors - 1)
 *                      data = raw deflate (RFC 1951) or zstd frames; one cluster of output
 *
 * Snapshot table entry                                              Qcow2Snapshot
 *   0 u64 l1_table_offset   8 u32 l1_size   12 u16 id_size   14 u16 name_size
 *  16 u32 date_sec   20 u32 date_nsec   24 u64 vm_clock_nsec   32 u32 vm_state_size
 *  36 u32 extra_data_size (&lt;= 1024): u64 vm_state_size_large, u64 disk_size, u64 icount
 *  then id, name, padding to 8
 * </pre>
 *
 * <h2>Parts</h2>
 * {@link imago.qcow2.internal.Qcow2Header} parses and validates cluster 0 against QEMU's limits
 * (arithmetic through {@link imago.qcow2.internal.Qcow2Checks}); {@link imago.qcow2.internal.Qcow2Instance}
 * holds the L1 table, classifies clusters (compressed, zero, unallocated, normal; subclusters with
 * extended L2) and merges runs into mappings; {@link imago.qcow2.internal.Qcow2L2Cache} caches L2
 * tables with lock-free hits; {@link imago.qcow2.internal.Qcow2Zstd} is loaded only for zstd clusters,
 * so that zstd-jni stays optional. {@link imago.qcow2.internal.Qcow2Create} writes new images;
 * {@link imago.qcow2.internal.Qcow2Refcounts} reads and updates refcounts of every width and allocates.
 */
package imago.qcow2.internal;
