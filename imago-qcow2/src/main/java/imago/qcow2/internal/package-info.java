/**
 * The qcow2 driver's implementation: qcow2 v2 and v3 images (QEMU's docs/interop/qcow2.txt): reading,
 * creation (byte for byte as qemu-img 7.2 creates them), allocating writes (copy-on-write from the
 * backing chain, zero clusters, compressed clusters and clusters or L2 tables shared with internal
 * snapshots, which stay intact), compressed writes of whole clusters into unallocated ones (as
 * {@code qemu-img convert -c}: deflate with a 4 KiB window or zstd, packed byte-wise), zero writes, discard,
 * growing (with preallocation metadata, falloc or full, on create too) and shrinking, with standard or
 * extended L2 entries (subclusters), external data files, internal snapshots: create, delete and apply (as
 * QEMU's qcow2-snapshot.c), and persistent dirty bitmaps, kept true as QEMU's qcow2-bitmap.c keeps them
 * ({@code Qcow2BitmapTracker}). What the writer cannot
 * keep consistent yet is refused with an {@link imago.api.UnsupportedFeatureException} before anything
 * changes: writable opens of an image with the
 * corrupt bit (except to repair it, opened for checking), and of a snapshot; refcount table growth past
 * QEMU's 8 MiB limit; growing an image whose backing file is not open, or a qcow2 v2 image past its last
 * cluster while its backing file is longer (QEMU fails that too).
 *
 * <h2>Write ordering</h2>
 * Refcount blocks and L2 tables are cached write-back, as QEMU caches them, and written in dependency
 * order: refcount blocks first, then a sync (which also makes the data written into new clusters,
 * copied parts included, durable), then the changed L2 tables; that happens on flush and whenever more
 * than 32 MiB of L2 tables are dirty. A refcount block may be written earlier (evicted) at any time:
 * an increment on disk before its reference can only leak. A new L2 table (zeroed or copied from a
 * table shared with a snapshot) is written at once, but its L1 entry is cached too and written last,
 * after a second sync: refcounts, sync, L2 tables, sync, L1 entries; a new
 * refcount block is synced before its refcount table entry; a grown refcount table (copy and switch)
 * before the header points at it. The clusters of L2 tables and data (a run for a write over empty clusters)
 * are found as QEMU's qcow2_alloc_clusters finds them, so that they lie where qemu-img puts them: first fit,
 * clusters no refcount block covers counting as free; a block missing for them then goes to the first free
 * cluster after them, describing itself, or counted by the block of its own range (made first, the same way),
 * and when its index is past the refcount table, the table grows as QEMU's qcow2_refcount_area grows it: at the
 * start of the next block's range the blocks it needs, then a table with half again as many entries as needed;
 * the old table is free once the header points at the new one (synced). A run of clusters
 * (an L1 table, a snapshot table, an L1 copy) that reaches clusters no refcount block covers, of any length,
 * goes after every cluster in use, followed by the refcount blocks it needs (each at the next cluster, the
 * block counting it right after it, as QEMU's alloc_refcount_block places them) and, when their indexes are
 * past the refcount table, a larger table after them; the new blocks count the run, themselves and the new
 * table. All of that is written and synced before the header switches to the new table (synced), or before
 * the new blocks' table entries are written, each after the entry of the new block that counts it; the old
 * table is freed only after the switch, on the next flush. An allocating
 * write's L2 entry is set only after its data is written ({@code completeWrite}), and rolled back
 * (clusters returned) if the data write fails; a write over several clusters that held nothing takes a
 * contiguous run of host clusters and goes to the host in one write. With extended L2 entries (as QEMU
 * 7.2): a write allocates a host cluster for a cluster without one, but only the subclusters it touches
 * become allocated, and only the parts of its first and last subcluster outside the write are copied
 * (from below, or zeroes for zero subclusters; with or without extended L2 entries, a part that is zero because
 * nothing lies below is zeroed in the file, sparse where the file system can, as QEMU's handle_alloc_space does); a write into unallocated or zero subclusters of a
 * cluster of ours goes in place and sets their bits (the allocated bits and the cleared zero bits are
 * committed like a new entry, after the data); compressed and snapshot-shared clusters are copied to a
 * new cluster. Zero writes mark whole subclusters zero (a whole cluster keeps its host cluster unless
 * unmapping; explicit zeroes only up to the next subcluster); a discard works on whole clusters, which
 * then read as zero (with an external data file, clusters sit at their guest offsets and a raw data file
 * gets the zeroes written). The entry and its bitmap word change in an order that never shows lock-free
 * readers allocated bits without a host cluster. Whole clusters with standard L2 entries are zeroed and
 * discarded as QEMU 7.2 does it: a zero write (version 3) marks the cluster zero whatever it held (unallocated
 * too), a discard marks an allocated cluster zero (version 2: unallocated) and an unallocated one only over a
 * backing file, a version 2 zero write with nothing below is a discard; both take the L2 table for writing first,
 * as QEMU's get_cluster_table does (a missing one is allocated, a shared one copied, even when no entry changes),
 * since later clusters lie after it. QEMU frees what a discard lets go of at once; here it is freed on the next
 * flush (below), so an allocation after a discard without a flush in between is placed elsewhere than QEMU places
 * it. One allocation lock is held from
 * {@code ensureDataMapping} to {@code completeWrite}, except for a write into a run of clusters that held
 * nothing (standard L2 entries): those guest clusters are claimed, the data is written without the lock
 * and the entries are set in {@code completeWrite}; every other user of the lock waits for the clusters
 * it touches, and resize, snapshot operations, check and preallocation wait until no such write is in
 * flight. An entry that drops a reference (zeroing, discard,
 * rewriting a compressed or shared cluster, copying a shared L2 table, moving the L1 table) changes
 * first; the refcount drops on the next flush, after the tables are written and synced, while in-place
 * writes are excluded. Clusters are handed out one at a time as they are needed, first fit, as QEMU's
 * allocator hands them out (nothing is reserved ahead, which would move later clusters), so that the same writes on
 * the same image give qemu-img's host offsets and file size; a new cluster is written (with extended L2 entries, the
 * subclusters a write touches) before anything points at it, which makes the file reach it (qemu-img check accepts
 * a reference less than a cluster past the end of the file, where QEMU's files end too). When a flush fails, writes
 * since the last successful flush may be lost; the image stays consistent.
 *
 * <p>Lazy refcounts (compatible bit 0, as QEMU's lazy_refcounts=on): before the first write-back of L2 tables or
 * L1 entries with refcount changes waiting (allocations; zero writes and discards alone leave the image clean, as
 * in QEMU) the dirty bit (incompatible bit 0) is written and synced (QEMU's qcow2_mark_dirty, done once per
 * session), and from then on the refcount blocks are not written by flushes: they wait in memory (written only
 * when evicted or by a sync of one of the operations below, always safe) and the sync between them and the L2
 * tables is left out, unless copy-on-write filled new clusters since the last one (the copied parts must be durable
 * before an entry points at them, as QEMU's perform_cow orders) or the file grew (an entry past the end of the file
 * cannot be repaired). So that growth rarely needs that sync, the file is then grown ahead (sparse, by an eighth, at
 * least 8 MiB, at most 256 MiB) before it: sequential allocating writes flushed one by one take one sync per flush,
 * as in QEMU, instead of two. New L2 tables are still synced before their L1 entries, and a refcount still drops only
 * after the L2 update that dropped the reference is synced. A clean close (after the caller's flush and sync) writes
 * the tables and every refcount block, cuts the file after its last cluster in use (as before a resize), syncs,
 * clears the dirty bit and syncs again (QEMU's qcow2_mark_clean in qcow2_inactivate); a close that fails leaves the
 * bit set (and a crash the sparse tail, which nothing refers to). A check through the open image writes the refcounts
 * first; a repairing one clears the bit when the image is clean, as QEMU's does. Resizing, snapshot operations and
 * the other operations that sync through their own steps still write the refcounts first, so their ordering holds
 * with or without the bit (QEMU's snapshot code does not touch the bit either). A dirty image opened writable is
 * repaired first (below), so a crash while dirty costs a refcount rebuild, never a reference or a synced byte.
 *
 * <p>Compressed data is packed as QEMU's qcow2_alloc_bytes packs it (after the previous bytes while their cluster
 * has room, crossing into the next cluster when that is the first free one, else from the start of the first free
 * cluster; never into a cluster whose refcount dropped to 0 since); each cluster the bytes touch gains a reference
 * in the cached refcounts, the compressed bytes are written before the L2 entry is set (cached, like the others),
 * and the refcounts reach the disk, synced, before that entry, so a crash can only leak. Preallocation allocates runs of clusters (reserving or zeroing the file's space first)
 * and syncs them with their refcounts before the L2 entries of each table point at them; with extended L2 entries,
 * as QEMU 7.2, the entries get host clusters with their subcluster bitmaps unchanged (new ones all unallocated,
 * reading from the backing file or as zero, which is why QEMU allows a backing file then) and nothing is written
 * into the clusters; zero clusters keep their flag. The old last cluster's head is copied from what the guest
 * read there (the backing file, for one that ends inside it). Growing with falloc or full over a longer backing
 * file makes the new clusters ordinary data, as QEMU's truncate does (every subcluster allocated, the old last
 * cluster rewritten with the guest's view of it, all synced before the entries). Shrinking clears the
 * L2 entries past the new end and the L1 entries past it (zeroes, synced) before their clusters' refcounts
 * drop, then writes the new size, drops refcount blocks that count nothing but themselves from the (synced)
 * refcount table, and cuts the file after the last cluster in use, as QEMU's qcow2_co_truncate,
 * qcow2_shrink_l1_table and qcow2_shrink_reftable do. Growing an image whose backing file is longer than its
 * old size hides the backing file's data in the new area, as QEMU's truncate with BDRV_REQ_ZERO_WRITE: the
 * header takes the grown L1 table (synced) with the old size, then explicit zeroes go up to the next subcluster
 * (an allocating write) and zero clusters or subclusters after it, all flushed before the header takes the
 * new size, so that no size ever shows the backing file there. With an external data file, growing sets the
 * data file to the new size (synced) before the header grows, or, preallocating (always for a raw data file, as
 * QEMU), grows it to the end of the last new cluster and syncs it, zeroes included, before the L2 entries point
 * at their guest offsets in it; shrinking cuts it to the new size after the header is synced. Every sync of the writer writes the cached
 * refcounts first.
 *
 * <p>Metadata is never overwritten with guest data, as QEMU's metadata overlap check ensures: a writable open
 * refuses an image whose metadata (header, L1 and L2 tables, refcount table and blocks, snapshot table and
 * the snapshots' L1 and L2 tables, bitmap directory and tables) has a cluster with refcount 0, which the
 * allocator could hand out; and before guest data goes in place into the host cluster of an L2 entry, the
 * cluster must be counted and must not be metadata (QEMU's default "cached" checks). A damaged entry that
 * fails this marks the image corrupt (the header's corrupt bit, synced), with QEMU's message, and the
 * instance takes no more writes.
 *
 * <p>Persistent bitmaps: before the first change a bitmap that records writes must see (an allocating or
 * in-place write, zeroing, discard, compressed write; every bitmap before a resize) is marked in use, the
 * bits are set in memory, and a clean close stores them: changed bitmap clusters and a new table go to new
 * clusters, made durable with their refcounts, before the directory points at them with the in-use flag
 * cleared; the old clusters are released after that. Each directory update clears the bitmaps autoclear bit
 * (synced), rewrites the directory in place (synced) and sets the bit again (synced), so that a torn
 * directory is never read. A crash leaves a bitmap in use (inconsistent, as after a crash of QEMU) or, between
 * those steps, no bitmaps and leaked clusters; never a consistent bitmap that misses a change. Applying a
 * snapshot is refused when the image has bitmaps, and resizing when one of them is inconsistent, as in QEMU.
 *
 * <p>Snapshot operations first flush (pending refcount drops, reservations) and exclude every write. Creating:
 * the snapshot's L1 copy and the new snapshot table are written, every path from the active L1 table gains a
 * reference and the active tables lose their COPIED flags, all synced before the header's nb_snapshots and
 * snapshots_offset (one write) switch to the new table; the old table is freed after that sync. Deleting: the
 * table without the entry is written and switched to (synced) before the snapshot's L1 table and paths lose
 * their references; COPIED flags are then set where a refcount returned to 1. Applying: the references only the
 * snapshot holds are added and the new active L1 table (in place, or new clusters when it must grow) written and
 * synced, then the header's size, l1_size and l1_table_offset (one write) synced, before the references only the
 * old active table held drop. A refcount and the COPIED flag of the entry it counts cannot change at once, so a
 * crash in between can leak clusters or leave COPIED flags that disagree with refcounts (qemu-img check -r all
 * repairs both, as after a crash of qemu), but never a reference without its refcount nor a COPIED flag on a
 * cluster a snapshot in the table shares. Freed clusters are discarded and forgotten by the L2 cache.
 *
 * <h2>Check and repair</h2>
 * {@link imago.qcow2.internal.Qcow2Check} is qemu-img check (QEMU 7.2's qcow2-refcount.c): references
 * counted in memory, one entry per host cluster of the file, compared with the refcounts. Repairs only
 * raise refcounts that are too low and lower those that are too high (freed clusters are discarded),
 * then fix COPIED flags. When a referenced cluster has refcount 0, {@link imago.qcow2.internal.Qcow2Rebuild}
 * writes new refcount blocks and a new table into clusters nothing uses and no old table entry names,
 * syncs, and only then switches the header to them (synced); the old structures are freed by the check
 * that follows. The snapshot table is read as QEMU's check reads it (qcow2_check_read_snapshot_table: too many
 * entries, an unaligned table or, without -r all, too much extra data in an entry fail the check; version 3
 * entries without a disk size are incomplete); -r all writes a damaged table anew after the refcount repairs:
 * the new clusters' refcounts (synced), then the table (synced), then nb_snapshots and snapshots_offset in one
 * header write (synced), and only then does the old table lose its references (nothing of it is freed if one
 * of its refcounts is already 0, or if the check did not count it: a table at cluster 0 or running a cluster or
 * more past the end of the file). Entries past 65536 or ending past 64 MiB are dropped, as QEMU's repair does. The dirty and corrupt bits are cleared last, after a sync, and only if the
 * image is clean.
 * A writable open of a dirty image (lazy refcounts, not closed cleanly) runs this repair first.
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
