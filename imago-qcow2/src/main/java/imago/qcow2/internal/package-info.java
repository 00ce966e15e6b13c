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
 * Crash safety rests on a few orderings, each described on the class that enforces it: a cluster's refcount reaches
 * the file before any entry points at it and drops only after the entry that let go of it is synced
 * ({@link imago.qcow2.internal.Qcow2WriteBack}, {@link imago.qcow2.internal.Qcow2Refcounts}); an allocating write's
 * entries are set only after its data, copied parts included ({@link imago.qcow2.internal.Qcow2WriteTicket},
 * {@link imago.qcow2.internal.Qcow2CopyOnWrite}); a new or moved table is synced before what points at it
 * ({@link imago.qcow2.internal.Qcow2Tables}, {@link imago.qcow2.internal.Qcow2Resize},
 * {@link imago.qcow2.internal.Qcow2Shrink}, {@link imago.qcow2.internal.Qcow2Preallocation},
 * {@link imago.qcow2.internal.Qcow2Snapshots}, {@link imago.qcow2.internal.Qcow2Rebuild}); lazy refcounts set the
 * dirty bit first ({@link imago.qcow2.internal.Qcow2WriteBack}); guest data never lands on metadata
 * ({@link imago.qcow2.internal.Qcow2Guard}); bitmaps are marked in use before a change they must record
 * ({@link imago.qcow2.internal.Qcow2BitmapTracker}); repairs as {@link imago.qcow2.internal.Qcow2CheckRepairs}
 * and {@link imago.qcow2.internal.Qcow2Rebuild} say. Who may change what, and when, is {@link imago.qcow2.internal.Qcow2Claims}'.
 *
 * <h2>Layout</h2>
 * All integers are big-endian.
 * <pre>
 * Header (cluster 0)                         Qcow2Header
 *   0  u32 magic "QFI\xfb"        4  u32 version (2, 3)
 *   8  u64 backing_file_offset   16  u32 backing_file_size (&lt;= 1023, inside cluster 0)
 *  20  u32 cluster_bits (9..21)  24  u64 size (virtual bytes)
 *  32  u32 crypt_method (0; 2 LUKS, its header in the clusters extension 0x0537BE77 names; 1 AES is refused)
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
 * <h2>Rooms</h2>
 * {@link imago.qcow2.internal.Qcow2Instance} is a facade: it wires the rooms below around one
 * {@link imago.qcow2.internal.Qcow2State} and hands each request, and each optional capability, to the room that
 * owns it.
 * <pre>
 * vocabulary      Qcow2Header (+ Qcow2Extension)  the header: parse, validate, write fields in place
 *                 Qcow2Geometry                   cluster, L2 and subcluster arithmetic
 *                 Qcow2Entries                    L1/L2 entry bits, compressed descriptors
 *                 Qcow2Codec (Qcow2Deflate, Qcow2Zstd)  deflate and zstd, one "zstd not installed"
 *                 Qcow2Snapshot                   the snapshot table: entries read, encoded, found
 *                 Qcow2Bitmaps                    the bitmap directory
 *                 Qcow2Checks                     overflow-checked arithmetic
 * state           Qcow2State                      the open layer's shared picture
 *                 Qcow2Room                       what every room reads of it (file, name, geometry)
 *                 Qcow2Action                     a step one room asks of another without depending on it
 * tables, space   Qcow2Tables (Qcow2L2Cache)      L2 tables, dirty tables and L1 entries, refcount drops to come
 *                 Qcow2Refcounts                  the allocator: first fit, compressed bytes, drops
 *                 Qcow2RefcountStore (Qcow2RefBlock)  refcount table, cached blocks, bulk adjust
 *                 Qcow2RefcountGrowth             new refcount blocks and tables, where QEMU puts them
 * concurrency     Qcow2Claims                     allocation lock, in-flight clusters, in-place lock
 *                 Qcow2WriteTicket, Qcow2Allocation  one write of each kind, and what it links on commit
 * operations      Qcow2Mapping                    classifying entries into mappings
 *                 Qcow2CompressedReads            decoding compressed clusters
 *                 Qcow2CopyOnWrite                filling what a write does not cover
 *                 Qcow2AllocatingWrites           mapping writes to host space, handing out tickets
 *                 Qcow2SubclusterWrites           the same with extended L2 entries
 *                 Qcow2CompressedWrites           whole clusters compressed (CompressedWriter)
 *                 Qcow2Crypto                     encrypt.format=luks: the LUKS header region, unlocked through the
 *                                                 EncryptionFormat SPI; sectors numbered by host offset / 512
 *                 Qcow2EncryptedWrites            writes widened to whole sectors, partial ones read-modify-write
 *                 Qcow2Zeroing                    zero writes and discards with metadata
 *                 Qcow2Resize, Qcow2Shrink        growing and shrinking (Resizer)
 *                 Qcow2Preallocation              preallocation at creation and when growing
 *                 Qcow2WriteBack                  dependency-ordered flush, lazy refcounts, dirty bit, close
 *                 Qcow2Snapshots, Qcow2SnapshotRefs  internal snapshots (InternalSnapshots)
 *                 Qcow2Guard                      the metadata overlap check, the corrupt bit
 *                 Qcow2BitmapTracker              persistent bitmaps kept true (Qcow2TrackedBitmap each)
 *                 Qcow2BitmapEditor               bitmaps added, removed, cleared, merged (BitmapEditor)
 *                 Qcow2BitmapStore                bitmaps stored on close, directory moved when it changed
 *                 Qcow2HeaderRewrite              cluster 0 rewritten with changed extensions, features, version
 *                 Qcow2Amend                      qemu-img amend (Amender), with Qcow2ZeroExpansion (downgrade)
 *                                                 and Qcow2RefcountWidth (refcount_bits)
 *                 Qcow2BackingRewriter            rebase and commit (BackingRewriter)
 * check           Qcow2Checker                    check through an open layer (Checker)
 *                 Qcow2Check                      qemu-img check and repair on the file, in passes:
 *                 Qcow2CheckCounting              the references counted (Qcow2RefArray), entries validated
 *                 Qcow2CheckRepairs               compared with the refcounts, repaired, COPIED flags, snapshot table
 *                 Qcow2Rebuild                    new refcount structures when a referenced cluster has none
 *                 Qcow2CheckState, Qcow2CheckResult  the image as the check reads it, the counts of a pass
 * entry points    Qcow2FormatDriver               probe, open, create
 *                 Qcow2Opening                    opening, the dirty repair, the L2 cache size
 *                 Qcow2Create                     new images, byte for byte as qemu-img's
 *                 Qcow2Info                       what info shows, the files the image names
 * </pre>
 */
package imago.qcow2.internal;
