/**
 * The cow driver's implementation: UML's copy-on-write images and QEMU's variant of them.
 *
 * <p>All variants start with the magic {@code "MOOO"} and a version, and keep one bit per sector after
 * the header: bit {@code n} is bit {@code n % 8} of bitmap byte {@code n / 8}; set means sector
 * {@code n} lives in this file at {@code dataOffset + n * sectorSize}, clear means it comes from the
 * backing file (zeroes without one). Layouts (offsets in bytes; all fields big-endian except UML v1's,
 * which are in the writing host's byte order):
 *
 * <table>
 * <caption>cow header variants</caption>
 * <tr><th>variant</th><th>name field</th><th>mtime</th><th>size (u64)</th><th>sector size</th>
 *     <th>other</th><th>header</th><th>bitmap at</th><th>bitmap bytes</th><th>data at</th></tr>
 * <tr><td>QEMU v2, x86-64 ({@code qemu-v2})</td><td>8, 1024</td><td>1032 (u32)</td><td>1040</td>
 *     <td>1048 (= 512)</td><td>pad 1036..1040</td><td>1056</td><td>1056</td><td>ceil(sectors / 8)</td>
 *     <td>round_up(bitmap end, 512)</td></tr>
 * <tr><td>QEMU v2, 32-bit x86 ({@code qemu-v2-32bit})</td><td>8, 1024</td><td>1032 (u32)</td><td>1036</td>
 *     <td>1044 (= 512)</td><td></td><td>1048</td><td>1048</td><td>ceil(sectors / 8)</td>
 *     <td>round_up(bitmap end, 512)</td></tr>
 * <tr><td>UML v1 ({@code uml-v1})</td><td>8, 256</td><td>264 (u32)</td><td>268</td><td>276 (s32)</td>
 *     <td></td><td>280</td><td>280</td><td>(size + ss - 1) / (8 ss)</td><td>round_up(bitmap end, ss)</td></tr>
 * <tr><td>UML v2 ({@code uml-v2})</td><td>8, 4096</td><td>4104 (u32)</td><td>4108</td><td>4116 (s32)</td>
 *     <td></td><td>4120</td><td>4120</td><td>(size + ss - 1) / (8 ss)</td><td>round_up(bitmap end, ss)</td></tr>
 * <tr><td>UML v3 ({@code uml-v3})</td><td>32, 4096</td><td>8 (u32)</td><td>12</td><td>20 (u32)</td>
 *     <td>alignment 24, cow_format 28 (= 0)</td><td>4128</td><td>round_up(4128, align)</td>
 *     <td>ceil(ceil(size / ss) / 8)</td><td>round_up(bitmap end, align)</td></tr>
 * <tr><td>UML v3 broken ({@code uml-v3-broken})</td><td>36, 4096</td><td>8 (u64 field, BE u32 in its
 *     first 4 bytes)</td><td>16</td><td>24 (u32)</td><td>alignment 28, cow_format 32 (= 0)</td><td>4136</td>
 *     <td>round_up(4136, align)</td><td>ceil(ceil(size / ss) / 8)</td><td>round_up(bitmap end, align)</td></tr>
 * </table>
 *
 * <p>Version 2 is written by three layouts; {@link imago.cow.internal.CowHeaders} tells them apart by
 * which parse validly and fit the file. UML tells v3 from "v3 broken" by the four bytes at 32 (zero:
 * broken). UML v1/v2 compute the bitmap one byte short when the sector count is not a multiple of 8; the
 * missing bits are used where the file has room for them before the data area.
 *
 * <p>Names are NUL-terminated within their field (UTF-8 here); a field without NUL is corrupt.
 */
package imago.cow.internal;
