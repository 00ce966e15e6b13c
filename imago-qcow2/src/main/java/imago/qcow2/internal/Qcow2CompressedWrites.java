package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COMPRESSED;
import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;

import imago.api.Feature;
import imago.api.ImageException;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.CompressedWriter;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Compressed writes of whole clusters into unallocated ones, as {@code qemu-img convert -c} writes them. Compressed
 * data is packed as QEMU's qcow2_alloc_bytes packs it ({@link Qcow2Refcounts#allocateBytes}), each cluster the bytes
 * touch gaining a reference in the cached refcounts; the compressed bytes are written before the L2 entry is set
 * (cached, like the others), and the refcounts reach the disk, synced, before that entry, so a crash can only leak.
 */
final class Qcow2CompressedWrites extends Qcow2Room implements CompressedWriter {
    private final Qcow2Tables tables;
    private final Qcow2Claims claims;
    private final Qcow2Mapping mapping;
    private final Qcow2CompressedReads compressedReads;
    private final Qcow2Codec codec;

    Qcow2CompressedWrites(Qcow2State st, Qcow2Tables tables, Qcow2Claims claims, Qcow2Mapping mapping,
            Qcow2CompressedReads compressedReads) {
        super(st);
        this.tables = tables;
        this.claims = claims;
        this.mapping = mapping;
        this.compressedReads = compressedReads;
        this.codec = new Qcow2Codec(st.resource, st.header.compressionType());
    }

    /**
     * {@inheritDoc} As QEMU's compressed write path: the cluster is compressed (deflate with a 4 KiB window
     * or zstd, after the header's compression type) outside any lock, so that many threads compress at
     * once; data that does not come out at least one byte smaller than a cluster is left to the ordinary
     * write path. The compressed bytes are packed after the previous ones ({@link Qcow2Refcounts#allocateBytes})
     * and written before the L2 entry that points at them. Only an unallocated (or plain zero) cluster may
     * be written compressed; a shared L2 table is copied first.
     */
    @Override
    public boolean writeCompressed(ByteBuffer cluster, long offset) throws IOException {
        if (!cluster.hasRemaining() && offset == 0) {
            alignEnd();
            return true;
        }
        ByteBuffer scratch = Qcow2CompressBuffers.take(2 * clusterSize);
        try {
            ByteBuffer packed = compress(cluster, offset, scratch);
            if (packed == null) {
                return false;
            }
            store(packed, offset, cluster.remaining());
            return true;
        } finally {
            Qcow2CompressBuffers.give(scratch);
        }
    }

    /**
     * {@inheritDoc} The compressed bytes are copied out of the pooled scratch buffer into one of their size, which the
     * store packs into the file as {@link #writeCompressed} does.
     */
    @Override
    public Store compress(ByteBuffer cluster, long offset) throws IOException {
        ByteBuffer scratch = Qcow2CompressBuffers.take(2 * clusterSize);
        ByteBuffer packed;
        try {
            ByteBuffer p = compress(cluster, offset, scratch);
            packed = p == null ? null : ByteBuffer.allocate(p.remaining()).put(p).flip();
        } finally {
            Qcow2CompressBuffers.give(scratch);
        }
        if (packed == null) {
            return () -> false;
        }
        int length = cluster.remaining();
        return () -> {
            store(packed, offset, length);
            return true;
        };
    }

    /**
     * Checks a compressed write and compresses the cluster into {@code scratch} (twice the cluster size): the
     * compressed bytes, or {@code null} when they would not be at least one byte smaller than a cluster.
     */
    private ByteBuffer compress(ByteBuffer cluster, long offset, ByteBuffer scratch) throws IOException {
        st.requireWritable(offset);
        if (st.crypto != null) {
            // QEMU stores compressed clusters unencrypted, so it refuses them in an encrypted image
            throw new UnsupportedFeatureException(resource, Feature.COMPRESSED_WRITES, "compression with encryption",
                    "Compression and encryption not supported at the same time");
        }
        int length = cluster.remaining();
        if ((offset & (clusterSize - 1)) != 0 || offset < 0 || offset >= st.size || length < 1 || length > clusterSize
                || length < clusterSize && offset + length != st.size) {
            throw new IllegalArgumentException(resource + ": a compressed write must cover one whole cluster (or the "
                    + "last one up to the end of the image), got " + length + " bytes at offset " + offset);
        }
        ByteBuffer plain;
        if (cluster.isDirect() && length == clusterSize) {
            plain = cluster.slice(cluster.position(), length);
        } else {
            // QEMU compresses the partial last cluster padded with zeroes to a whole one
            plain = scratch.slice(0, clusterSize).put(0, cluster, cluster.position(), length);
            if (length < clusterSize) {
                plain.put(length, new byte[clusterSize - length]);
            }
        }
        // QEMU only stores data compressed when it needs at most cluster_size - 1 bytes
        ByteBuffer packed = scratch.slice(clusterSize, clusterSize - 1);
        int n = codec.compress(plain, packed);
        return n <= 0 ? null : packed.limit(n);
    }

    /** Stores the compressed bytes of the {@code length} guest bytes at {@code offset}. */
    private void store(ByteBuffer packed, long offset, int length) throws IOException {
        if (st.tracker != null) {
            st.tracker.written(offset, length);
        }
        storeCompressed(packed, offset);
    }

    /**
     * QEMU's compressed write of no bytes, which qemu-img convert -c makes last: the file is truncated to its length
     * rounded up to whole 512-byte sectors (compressed bytes end anywhere), "to ease reading with sector based I/O".
     */
    private void alignEnd() throws IOException {
        st.requireWritable(0);
        claims.lock();
        try {
            long length = storage.size();
            long sectors = (length + 511) & ~511L;
            if (sectors != length) {
                storage.resize(sectors, Preallocation.OFF);
            }
        } finally {
            claims.unlock();
        }
    }

    /** Packs {@code packed}, one cluster's compressed bytes, into the file and points the L2 entry at them. */
    private void storeCompressed(ByteBuffer packed, long offset) throws IOException {
        int n = packed.remaining();
        claims.lock();
        try {
            claims.awaitClusters(offset >>> clusterBits, offset >>> clusterBits);
            if (claims.holding()) {
                throw new IllegalStateException(resource + ": an allocating write is in progress on this thread");
            }
            mapping.unit(offset); // validates the L1 and L2 entries before anything changes
            long guestCluster = offset >>> clusterBits;
            int l1Index = st.geometry.l1Index(guestCluster);
            int index = st.geometry.l2Index(guestCluster);
            long l1e = st.l1[l1Index];
            long l2Offset = l1e & OFFSET_MASK;
            boolean sharedL2 = l2Offset != 0 && (l1e & COPIED) == 0;
            long entry = l2Offset == 0 ? 0 : tables.table(l2Offset)[extendedL2 ? 2 * index : index];
            if ((entry & COMPRESSED) != 0 || (entry & OFFSET_MASK) != 0) {
                // QEMU's qcow2_alloc_compressed_cluster_offset refuses (EIO) as well
                throw new ImageException(resource, "cannot write compressed data to guest offset " + offset
                        + ": the cluster is already allocated (compressed data can only be written to unallocated "
                        + "clusters)");
            }
            if (l2Offset == 0 || sharedL2) {
                st.requireRoom(1);
            }
            if (l2Offset == 0) {
                l2Offset = tables.allocateL2(l1Index);
            } else if (sharedL2) {
                l2Offset = tables.copyL2(l1Index, l2Offset);
            }
            long host = st.refcounts.allocateBytes(n);
            st.growFile(((host + n - 1) | (clusterSize - 1)) + 1);
            try {
                storage.write(packed, host);
            } catch (IOException | RuntimeException e) {
                st.refcounts.freeBytes(host, n);
                throw e;
            }
            // bytes freed earlier can be packed again at the same place and size: the new L2 entry may then
            // equal the one whose decoded cluster is cached
            compressedReads.forget();
            // the sector count field holds the number of 512-byte sectors touched after the first
            long newEntry = Qcow2Entries.compressedEntry(host, n, clusterBits);
            if (extendedL2) {
                // a compressed cluster's bitmap is 0 (QEMU ignores it and writes it so)
                tables.setExtendedL2Entry(l2Offset, index, newEntry, 0);
            } else {
                // cached write-back: on disk only after the run's refcounts and the compressed bytes are synced
                tables.setL2Entry(l2Offset, index, newEntry);
            }
        } finally {
            claims.unlock();
        }
    }
}
