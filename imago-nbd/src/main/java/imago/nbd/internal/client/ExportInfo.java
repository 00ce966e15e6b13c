package imago.nbd.internal.client;

import imago.nbd.internal.Nbd;

/**
 * What the handshake agreed on for one export.
 *
 * @param size the export's size in bytes
 * @param flags the transmission flags ({@code NBD_FLAG_*})
 * @param minBlock the alignment requests must have (1 when the server set none)
 * @param maxBlock the largest payload of a read or write
 * @param structured whether replies may be structured
 * @param baseAllocation the id of the {@code base:allocation} meta context, or -1 when the server has none
 */
record ExportInfo(long size, int flags, int minBlock, int maxBlock, boolean structured, int baseAllocation) {
    /** The largest payload the specification lets a client send to a server that said nothing. */
    static final int DEFAULT_MAX_BLOCK = 32 << 20;

    boolean readOnly() {
        return (flags & Nbd.FLAG_READ_ONLY) != 0;
    }

    boolean has(int flag) {
        return (flags & Nbd.FLAG_HAS_FLAGS) != 0 && (flags & flag) != 0;
    }
}
