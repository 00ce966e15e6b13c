package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;

import imago.api.Feature;
import imago.api.ImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BackingRewriter;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The backing file of a layer rewritten ({@code rebase}: cluster 0 in one write, in QEMU's extension order) and the
 * layer emptied ({@code commit}: every cluster unmapped, as QEMU's full discard).
 */
final class Qcow2BackingRewriter extends Qcow2Room implements BackingRewriter {
    private final Qcow2Claims claims;
    private final Qcow2WriteBack writeBack;
    private final Qcow2Zeroing zeroing;

    Qcow2BackingRewriter(Qcow2State st, Qcow2Claims claims, Qcow2WriteBack writeBack, Qcow2Zeroing zeroing) {
        super(st);
        this.claims = claims;
        this.writeBack = writeBack;
        this.zeroing = zeroing;
    }

    /**
     * {@inheritDoc} Every cluster of the active image becomes unallocated (QEMU's full discard); tables
     * without an L2 table are skipped, so the work follows what is allocated, not the virtual size.
     */
    @Override
    public void makeEmpty() throws IOException {
        st.requireWritable(0);
        long span = 1L << (clusterBits + l2Bits);
        for (int i = 0; i < st.l1.length && (long) i * span < st.size; i++) {
            if ((st.l1[i] & OFFSET_MASK) == 0) {
                continue;
            }
            long pos = i * span;
            long end = Math.min(pos + span, st.size);
            while (pos < end) {
                long handled = zeroing.zeroClusters(pos, end - pos, true, true, true);
                if (handled == 0) {
                    throw new ImageException(resource, pos, "cannot unmap the cluster at guest offset " + pos
                            + ": no room to copy its shared L2 table", null);
                }
                pos += handled;
            }
        }
        writeBack.flush();
    }

    /**
     * {@inheritDoc} Cluster 0 is rewritten in one write, as QEMU rewrites it, and synced; the new
     * reference takes effect for this instance at once (copy-on-write and zeroing consult it).
     */
    @Override
    public void changeBackingFile(String file, String format) throws IOException {
        st.requireWritable(0);
        if (format != null && file == null) {
            throw new IllegalArgumentException("a backing format needs a backing file");
        }
        if (file != null && st.header.hasDataFile() && st.header.dataFileRaw()) {
            throw new UnsupportedFeatureException(resource, Feature.EXTERNAL_DATA_FILE, "qcow2 backing file with data_file_raw",
                    "an image whose external data file is raw cannot have a backing file");
        }
        claims.lock();
        try {
            claims.awaitQuiet();
            ByteBuffer cluster0 = ByteBuffer.allocate(clusterSize);
            storage.read(cluster0, 0);
            byte[] updated = st.header.withBacking(cluster0.array(), resource, file, format);
            Qcow2Header parsed = Qcow2Header.parse(ByteBuffer.wrap(updated), resource, storage.size());
            storage.write(ByteBuffer.wrap(updated), 0);
            storage.flush();
            st.syncAll();
            st.header = parsed;
            st.backingSize = -1; // the new backing image is not known until it is opened
        } finally {
            claims.unlock();
        }
    }
}
