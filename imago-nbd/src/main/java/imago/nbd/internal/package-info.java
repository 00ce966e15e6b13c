/**
 * The NBD protocol as the specification (NetworkBlockDevice/nbd, doc/proto.md) defines it: the fixed newstyle
 * handshake ({@link imago.nbd.internal.Handshake}, options parsed by {@link imago.nbd.internal.ClientOption}),
 * the transmission phase ({@link imago.nbd.internal.Transmission}) with simple and structured replies
 * ({@link imago.nbd.internal.Replies}), and the meta contexts of block status
 * ({@link imago.nbd.internal.MetaContext}). All integers on the wire are big-endian.
 *
 * <pre>
 * handshake   S: "NBDMAGIC" "IHAVEOPT" u16 flags        C: u32 flags
 * option      C: "IHAVEOPT" u32 option u32 length data
 * reply       S: u64 0x3e889045565a9 u32 option u32 type u32 length data
 * request     C: u32 0x25609513 u16 flags u16 type u64 cookie u64 offset u32 length [data]
 * simple      S: u32 0x67446698 u32 error u64 cookie [data]
 * structured  S: u32 0x668e33ef u16 flags u16 type u64 cookie u32 length payload
 * </pre>
 */
package imago.nbd.internal;
