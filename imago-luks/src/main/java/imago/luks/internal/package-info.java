/**
 * The luks format driver (LUKS1 and LUKS2). LUKS1's on-disk layout, big-endian, 512-byte sectors:
 *
 * <pre>
 * offset  size  field
 *      0     6  magic "LUKS" 0xba 0xbe
 *      6     2  version (1)
 *      8    32  cipher name ("aes", "serpent", "twofish", "cast5"), NUL-padded
 *     40    32  cipher mode ("xts-plain64", "cbc-essiv:sha256", ...)
 *     72    32  hash spec ("sha256"): PBKDF2's HMAC and the anti-forensic diffuser
 *    104     4  payload offset, in sectors
 *    108     4  key bytes (master key length)
 *    112    20  master key digest: PBKDF2(master key, digest salt, digest iterations)
 *    132    32  master key digest salt
 *    164     4  master key digest iterations
 *    168    40  UUID text
 *    208   384  8 key slots of 48 bytes:
 *                 0  4  state (0x00AC71F3 enabled, 0x0000DEAD disabled)
 *                 4  4  PBKDF2 iterations
 *                 8 32  salt
 *                40  4  key material offset, in sectors
 *                44  4  anti-forensic stripes (4000)
 * </pre>
 *
 * A slot's material is the master key split into 4000 stripes ({@code imago.luks.crypto.AntiForensic}) and
 * encrypted with the payload's cipher under PBKDF2(passphrase, salt, iterations), its sectors numbered from 0. The
 * payload is the guest disk, its sector {@code n} encrypted with IV {@code n}.
 *
 * <p>LUKS2 ({@code Luks2*} classes; the same magic, version 2) has two header copies, the primary at 0 and the
 * secondary (magic "SKUL" 0xba 0xbe) at {@code hdr_size}, each a binary header padded to 4096 bytes and a
 * NUL-terminated JSON area filling the rest of {@code hdr_size}:
 *
 * <pre>
 * offset  size  field
 *      0     6  magic
 *      6     2  version (2)
 *      8     8  hdr_size: binary header plus JSON area, 16 KiB to 4 MiB, a power of two
 *     16     8  seqid, raised on every update (the higher of two good copies wins)
 *     24    48  label
 *     72    32  checksum algorithm ("sha256")
 *    104    64  salt (a different one per copy)
 *    168    40  UUID text
 *    208    48  subsystem
 *    256     8  hdr_offset: where this copy is
 *    264   184  padding
 *    448    64  checksum: the hash of the hdr_size bytes with this field zeroed
 *   4096        JSON: {"keyslots": {"0": {type luks2, key_size, af {luks1, stripes, hash},
 *                 area {raw, offset, size, encryption, key_size}, kdf {pbkdf2 hash iterations | argon2i/argon2id
 *                 time memory cpus, salt}, priority?}}, "segments": {"0": {crypt, offset, size|"dynamic", iv_tweak,
 *                 encryption, sector_size}}, "digests": {"0": {pbkdf2, keyslots, segments, hash, iterations, salt,
 *                 digest}}, "tokens": {}, "config": {json_size, keyslots_size, requirements?}}
 * </pre>
 *
 * 64-bit offsets and sizes are decimal strings, salts and digests base64. A slot's area holds the volume key split
 * into {@code stripes} with the {@code af} hash, encrypted with the area's cipher under the KDF's output, its
 * 512-byte sectors numbered from 0; the data segment's sector {@code n} (in {@code sector_size} units from the
 * segment's offset) is encrypted with IV {@code n + iv_tweak}.
 *
 * <p>{@code amend} changes LUKS2 key slots as cryptsetup does ({@code Luks2KeySlots}): a new slot's area is the
 * first 4 KiB-aligned gap in the key-slot area, written and synced before the metadata names it; an erased slot's
 * area is overwritten and synced before the metadata drops it. The metadata then goes into both copies with the
 * next {@code seqid}, one copy at a time, each synced, the copy not in use first ({@code Luks2Commit}).
 */
package imago.luks.internal;
