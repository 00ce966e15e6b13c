/**
 * A third-party format plug-in, {@code imagotst}, written only against {@code imago.api.spi} the way
 * an outside module would be: a tiny format so that the tests can prove that probing, opening,
 * reading, writing and creating work for a format no other imago module knows about.
 *
 * <p>Layout (big-endian):
 * <table>
 * <caption>imagotst header</caption>
 * <tr><th>offset</th><th>size</th><th>field</th></tr>
 * <tr><td>0</td><td>8</td><td>magic, ASCII {@code IMAGOTST}</td></tr>
 * <tr><td>8</td><td>8</td><td>virtual size in bytes, u64</td></tr>
 * <tr><td>16</td><td>4</td><td>version, u32, always 1</td></tr>
 * <tr><td>20</td><td>492</td><td>reserved, zero</td></tr>
 * <tr><td>512</td><td>size</td><td>guest data, byte for byte; a short file reads as zeroes</td></tr>
 * </table>
 *
 * <p>Not exported: like every format module, the plug-in is reached only through
 * {@code provides imago.api.spi.FormatDriver}.
 */
package imago.moduletests.plugin;
