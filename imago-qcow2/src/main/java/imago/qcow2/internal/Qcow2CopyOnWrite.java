package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.SUB_ALLOC_ALL;

import imago.api.spi.BackingReader;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Copy-on-write: fills the parts of a newly allocated cluster (or subclusters) that a write does not cover, from
 * what the guest read there before (the backing chain, zeroes, the old cluster, a decompressed one). The copied
 * bytes must be durable before an L2 entry points at them: the write-back is told ({@link Qcow2WriteBack#copied}).
 * A part that is zero because nothing lies below (no backing file, a zero cluster, unallocated subclusters over
 * nothing) is zeroed in the file instead of written, sparse where the file system can, as QEMU's
 * handle_alloc_space does, so that the file's allocation and its qemu-img map match QEMU's.
 */
final class Qcow2CopyOnWrite extends Qcow2Room {
    private final Qcow2WriteBack writeBack;

    Qcow2CopyOnWrite(Qcow2State st, Qcow2WriteBack writeBack) {
        super(st);
        this.writeBack = writeBack;
    }

    /** Fills the parts of the cluster at {@code host} outside the write from {@code source}. */
    void copyOnWrite(long host, long clusterStart, int inCluster, int n, BackingReader source)
            throws IOException {
        if (inCluster > 0) {
            copyPart(host, clusterStart, 0, inCluster, source);
        }
        if (inCluster + n < clusterSize) {
            copyPart(host, clusterStart, inCluster + n, clusterSize, source);
        }
    }

    void copyPart(long host, long clusterStart, int from, int to, BackingReader source) throws IOException {
        // only bytes inside the virtual size come from below; the rest of the last cluster is zero (the VM state
        // area past it has no end)
        long readable = Math.max(0, Math.min(to, st.addressEnd(clusterStart) - clusterStart) - from);
        if (st.crypto != null) {
            // encrypted zeroes are not zero bytes: every part is written, encrypted, as QEMU writes it
            ByteBuffer buf = ByteBuffer.allocate(to - from);
            if (readable > 0 && source != BackingReader.ZEROES) {
                source.read(buf.limit((int) readable), clusterStart + from);
            }
            st.writeData(buf.clear(), host + from);
            writeBack.copied();
            return;
        }
        if (source == BackingReader.ZEROES || readable == 0) {
            // a part known to be zero is zeroed in the file, not written (see the class comment)
            st.dataStorage().writeZeroes(host + from, to - from, false);
            writeBack.copied();
            return;
        }
        ByteBuffer buf = ByteBuffer.allocate(to - from);
        if (readable > 0) {
            source.read(buf.limit((int) readable), clusterStart + from);
        }
        st.dataStorage().write(buf.clear(), host + from);
        writeBack.copied();
    }

    /** Fills bytes {@code [from, writeFrom)} and {@code [writeTo, to)} of the cluster at {@code host}. */
    void copyAround(long host, long clusterStart, int from, int writeFrom, int writeTo, int to,
            BackingReader source) throws IOException {
        if (from < writeFrom) {
            copyPart(host, clusterStart, from, writeFrom, source);
        }
        if (writeTo < to) {
            copyPart(host, clusterStart, writeTo, to, source);
        }
    }

    /**
     * Reads the guest bytes of a cluster as its subclusters say: allocated ones from {@code host}, zero ones
     * as zeroes, the others from {@code below}.
     */
    BackingReader subclusterSource(long clusterStart, long host, long bitmap, BackingReader below) {
        if (below == BackingReader.ZEROES && (bitmap & SUB_ALLOC_ALL) == 0) {
            // nothing allocated and nothing below: every subcluster reads as zero
            return BackingReader.ZEROES;
        }
        return (dst, at) -> {
            long pos = at;
            while (dst.hasRemaining()) {
                int inCluster = (int) (pos - clusterStart);
                int sc = inCluster >>> unitBits;
                int n = Math.min(dst.remaining(), ((sc + 1) << unitBits) - inCluster);
                ByteBuffer part = dst.slice(dst.position(), n);
                if ((bitmap & (1L << sc)) != 0) {
                    st.readData(part, host + inCluster);
                } else if ((bitmap & (1L << (32 + sc))) != 0) {
                    BackingReader.ZEROES.read(part, pos);
                } else {
                    below.read(part, pos);
                }
                dst.position(dst.position() + n);
                pos += n;
            }
        };
    }

    static BackingReader sourceFor(Qcow2Mapping.Kind kind, BackingReader below) {
        return kind == Qcow2Mapping.Kind.ZERO_PLAIN ? BackingReader.ZEROES : below;
    }
}
