/**
 * The vhdx driver's implementation (Microsoft "VHDX Format Specification" 1.00). All integers little-endian; GUIDs
 * with their first three fields little-endian.
 *
 * <pre>
 * offset        what
 * 0             file type identifier: "vhdxfile", creator (UTF-16LE, 512 bytes)          64 KiB
 * 64 KiB        header 1: "head", CRC-32C, sequence u64, file write, data write and log GUIDs,
 *               log version u16 (0), version u16 (1), log length u32, log offset u64   4 KiB
 * 128 KiB       header 2 (the valid header with the higher sequence number is current)
 * 192 KiB       region table 1: "regi", CRC-32C, count u32; entries {GUID, offset u64, length u32,
 *               required u32} (BAT and metadata regions)                             64 KiB
 * 256 KiB       region table 2 (the same)
 * 1 MiB         log (qemu-img: log_size, default 1 MiB): entries {"loge", CRC-32C, length, tail,
 *               sequence, descriptor count, log GUID, flushed and last file offset; descriptors
 *               "desc" (leading 8 and trailing 4 bytes of the 4 KiB sector) or "zero"; data sectors
 *               "data", sequence high, 4084 bytes, sequence low}
 * after the log BAT: u64 entries, state bits 0..2 (payload: 0 not present, 1 undefined, 2 zero,
 *               3 unmapped, 6 fully present, 7 partially present; sector bitmap: 0, 6 present),
 *               offset in MiB bits 20..63; a sector bitmap entry after every chunk ratio =
 *               2^23 * logical sector size / block size payload entries
 * after the BAT metadata region (1 MiB): "metadata", count u16 at 10; entries {item GUID, offset u32,
 *               length u32, flags u32 (user, virtual disk, required)}; items from 64 KiB on:
 *               file parameters {block size u32, flags u32: leave blocks allocated, has parent},
 *               virtual disk size u64, page 83 data (GUID), logical and physical sector size u32,
 *               parent locator {type GUID, count u16 at 18, entries {key offset, value offset u32,
 *               key length, value length u16}, UTF-16LE keys and values}
 * metadata + 5 MiB  data blocks (qemu-img's layout; new blocks at the end of the file, 1 MiB aligned)
 * </pre>
 */
package imago.vhdx.internal;
