/**
 * The vmdk driver's implementation: VMware virtual disks, as VMware's "Virtual Disk Format 1.1" describes them and
 * QEMU 7.2 reads and writes them.
 *
 * <p>An image is a <b>descriptor</b> (text: {@code version}, {@code CID}, {@code parentCID}, {@code createType},
 * an optional {@code parentFileNameHint}, extent lines {@code ACCESS SECTORS TYPE "FILE" [OFFSET]}, and the disk
 * database {@code ddb.*}) and the <b>extents</b> it lists, end to end: {@code FLAT} and {@code VMFS} (guest bytes
 * in a plain file, from an offset in sectors), {@code ZERO} (no file), {@code SPARSE} (a hosted sparse file).
 * monolithicSparse and streamOptimized images are one sparse file whose descriptor is embedded in it.
 *
 * <p>Hosted sparse extent header ({@code KDMV}), little-endian, sizes and offsets in 512-byte sectors:
 * <table>
 * <caption>KDMV header</caption>
 * <tr><th>offset</th><th>size</th><th>field</th></tr>
 * <tr><td>0</td><td>4</td><td>magic "KDMV"</td></tr>
 * <tr><td>4</td><td>4</td><td>version: 1, 2 (zeroed-grain entries), 3 (streamOptimized; CBT)</td></tr>
 * <tr><td>8</td><td>4</td><td>flags: 0 newline check, 1 redundant grain directory, 2 zeroed-grain entries,
 *     16 compressed grains, 17 markers</td></tr>
 * <tr><td>12</td><td>8</td><td>capacity</td></tr>
 * <tr><td>20</td><td>8</td><td>grain size (QEMU: at most 0x200000)</td></tr>
 * <tr><td>28</td><td>8</td><td>descriptor offset (0: none)</td></tr>
 * <tr><td>36</td><td>8</td><td>descriptor size</td></tr>
 * <tr><td>44</td><td>4</td><td>grain table entries per table (QEMU: at most 512)</td></tr>
 * <tr><td>48</td><td>8</td><td>redundant grain directory</td></tr>
 * <tr><td>56</td><td>8</td><td>grain directory, or -1: in the footer (streams)</td></tr>
 * <tr><td>64</td><td>8</td><td>overhead: where grains may start</td></tr>
 * <tr><td>72</td><td>1</td><td>unclean shutdown</td></tr>
 * <tr><td>73</td><td>4</td><td>newline check {@code '\n' ' ' '\r' '\n'}</td></tr>
 * <tr><td>77</td><td>2</td><td>compression: 0 none, 1 deflate (zlib streams)</td></tr>
 * </table>
 *
 * <p>Grain directory entries (u32) give the sector of a grain table; grain table entries (u32) the sector of a
 * grain: 0 unallocated (the parent's bytes, or zeroes), 1 zeroes (with the zeroed-grain flag), otherwise data. A
 * compressed grain is a marker ({@code lba} u64, {@code size} u32) and a zlib stream of {@code size} bytes. A stream
 * that keeps its directory at the end has, in its last three sectors, a footer marker, a copy of the header with the
 * real directory offset, and an end-of-stream marker.
 *
 * <p>Write ordering (sparse extents): a new grain is appended at the end of the file, aligned to the grain size
 * (past every grain the tables name if that is further: a file cut short, whose grains past its end read as zeroes);
 * the caller writes it; its grain table entry changes in memory; a flush syncs the grains, writes the grain tables
 * and their redundant copies, and for a table that is new, syncs again before the directory entries point at it.
 */
package imago.vmdk.internal;
