package imago.qcow2.internal;

import imago.api.ImageException;
import imago.api.Mapping;
import imago.api.spi.BackingReader;
import imago.api.spi.VmStateArea;
import imago.api.spi.WriteTicket;
import imago.qcow2.internal.Qcow2Mapping.Unit;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * The VM state area, where QEMU's savevm keeps a snapshot's memory and device state, as QEMU 7.2's qcow2 driver keeps
 * it: guest offsets from the first L1 entry boundary at or past the virtual size on (qcow2_vm_state_offset: the
 * virtual size rounded up to what one L2 table maps), in ordinary clusters through the active L1 and L2 tables,
 * which the virtual size hides from the guest, {@code map}, {@code convert} and {@code compare}. A write there
 * first grows the L1 table as QEMU's does ({@link Qcow2L1Growth#growToReach}), then allocates and copies on write
 * as any write ({@link Qcow2AllocatingWrites#beginVmState}; with a backing file, the rest of a new cluster comes
 * from the backing image at the same offset, and what was never written reads as the backing image reads there, as
 * in QEMU), leaving the persistent bitmaps alone. An internal snapshot taken afterwards keeps the area with the
 * L1 table it copies; reverting to one brings its area back.
 */
final class Qcow2VmState extends Qcow2Room implements VmStateArea {
    private final Qcow2Claims claims;
    private final Qcow2Mapping mapping;
    private final Qcow2CompressedReads compressedReads;
    private final Qcow2AllocatingWrites writes;
    private final Qcow2L1Growth l1Growth;

    Qcow2VmState(Qcow2State st, Qcow2Claims claims, Qcow2Mapping mapping, Qcow2CompressedReads compressedReads,
            Qcow2AllocatingWrites writes) {
        super(st);
        this.claims = claims;
        this.mapping = mapping;
        this.compressedReads = compressedReads;
        this.writes = writes;
        this.l1Growth = new Qcow2L1Growth(st);
    }

    /** Where the area starts: the virtual size rounded up to the span of one L2 table (QEMU's l1_vm_state_index). */
    long offset() {
        int spanBits = clusterBits + l2Bits;
        return Qcow2Checks.divCeil(st.size, 1L << spanBits) << spanBits;
    }

    /**
     * The guest offset of {@code position}, for a request of {@code length} bytes that must end within QEMU's
     * BDRV_MAX_LENGTH (2^63 - 2^30), as QEMU fails (EIO) one that does not.
     */
    private long start(long position, int length) {
        long start = offset() + position;
        if (start < 0 || start > MAX_END - length) {
            throw new IllegalArgumentException(resource + ": a VM state request of " + length + " bytes at " + position
                    + " ends past QEMU's largest offset");
        }
        return start;
    }

    /** QEMU's BDRV_MAX_LENGTH: INT64_MAX rounded down to 1 GiB. */
    private static final long MAX_END = Long.MAX_VALUE & -(1L << 30);

    @Override
    public void read(ByteBuffer dst, long position, BackingReader below) throws IOException {
        long start = start(position, dst.remaining());
        if (st.crypto != null) {
            st.crypto.requireKey();
        }
        long pos = start;
        while (dst.hasRemaining()) {
            Unit u = mapping.unit(pos);
            int n = (int) Math.min(dst.remaining(), u.end() - pos);
            ByteBuffer part = dst.slice(dst.position(), n);
            switch (u.kind()) {
                case DATA -> st.readData(part, u.host());
                case ZERO_PLAIN, ZERO_ALLOC -> MemorySegment.ofBuffer(part).fill((byte) 0);
                // as QEMU, the backing image at the same offset (zeroes past its end, or without one)
                case UNALLOCATED -> below.read(part, pos);
                case COMPRESSED -> {
                    long clusterStart = pos & -(long) clusterSize;
                    part.put(compressedReads.decompressed(u.entry(), clusterStart), (int) (pos - clusterStart), n);
                }
                default -> throw new ImageException(resource, "unexpected unit " + u);
            }
            dst.position(dst.position() + n);
            pos += n;
        }
    }

    /**
     * {@inheritDoc} The L1 table grows first if the write reaches past it (refused past QEMU's limit before anything
     * changes), then the bytes go through write tickets as the guest's do. An external data file grows to hold the
     * area at its guest offsets, as QEMU's does.
     */
    @Override
    public void write(ByteBuffer src, long position, BackingReader below) throws IOException {
        st.requireWritable(-1);
        long start = start(position, src.remaining());
        long lastIndex = (start + src.remaining() - 1) >>> clusterBits >>> l2Bits;
        if (lastIndex >= st.l1.length) {
            claims.lock();
            try {
                claims.awaitQuiet();
                l1Growth.growToReach(lastIndex);
            } finally {
                claims.unlock();
            }
        }
        long pos = start;
        while (src.hasRemaining()) {
            try (WriteTicket t = writes.beginVmState(pos, src.remaining(), below)) {
                Mapping.Data d = t.mapping();
                int n = (int) Math.min(d.length(), src.remaining());
                // a failed write closes the ticket uncommitted: the allocation is rolled back
                t.write(src.slice(src.position(), n));
                t.commit();
                src.position(src.position() + n);
                pos += n;
            }
        }
    }
}
