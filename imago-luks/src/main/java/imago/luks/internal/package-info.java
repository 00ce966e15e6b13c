/**
 * The luks format driver (LUKS1). On-disk layout, big-endian, 512-byte sectors:
 *
 * <pre>
 * offset  size  field
 *      0     6  magic "LUKS" 0xba 0xbe
 *      6     2  version (1)
 *      8    32  cipher name ("aes"), NUL-padded
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
 */
package imago.luks.internal;
