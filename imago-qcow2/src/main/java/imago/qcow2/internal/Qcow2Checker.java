package imago.qcow2.internal;

import imago.api.CheckReport;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.api.spi.Checker;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Objects;

/** Check and repair of an open layer ({@link Qcow2Check} does the work), and the picture read again after a repair. */
final class Qcow2Checker extends Qcow2Room implements Checker {
    private final Qcow2Tables tables;
    private final Qcow2Claims claims;
    private final Qcow2WriteBack writeBack;
    private final Qcow2CompressedReads compressedReads;

    Qcow2Checker(Qcow2State st, Qcow2Tables tables, Qcow2Claims claims, Qcow2WriteBack writeBack,
            Qcow2CompressedReads compressedReads) {
        super(st);
        this.tables = tables;
        this.claims = claims;
        this.writeBack = writeBack;
        this.compressedReads = compressedReads;
    }

    /**
     * Checks and repairs as {@code qemu-img check}; see {@link Qcow2Check}. A writable layer is flushed
     * first, and after a repair its tables, refcounts and caches are read again.
     */
    @Override
    public CheckReport check(Repair repair) throws IOException {
        Objects.requireNonNull(repair, "repair");
        if (repair != Repair.NONE && storage.readOnly()) {
            throw new ReadOnlyImageException(resource, "cannot repair a qcow2 image opened read-only");
        }
        if (st.refcounts != null) {
            writeBack.flush();
        }
        claims.lock();
        try {
            claims.awaitQuiet();
            if (st.refcounts != null) {
                // the check reads refcounts from the file: lazy ones too
                st.refcounts.writeDirty();
                storage.flush();
            }
            CheckReport report = new Qcow2Check(storage).run(repair);
            if (repair != Repair.NONE) {
                reload();
            }
            return report;
        } finally {
            claims.unlock();
        }
    }

    /** Reads the header, the active L1 table and the refcounts again after a repair changed them. */
    private void reload() throws IOException {
        long newFileSize = storage.size();
        ByteBuffer cluster0 = ByteBuffer.allocate(clusterSize);
        storage.read(cluster0, 0);
        // what the repair could not fix is in its report: read the header back as the check does
        boolean lenient = st.refcounts == null;
        Qcow2Header h = Qcow2Header.parse(cluster0.flip(), resource, lenient ? Long.MAX_VALUE : newFileSize, lenient);
        // a repair may have written a new snapshot table
        List<Qcow2Snapshot> table = h.nbSnapshots() == 0 ? List.of()
                : lenient ? Qcow2Snapshot.readForCheck(storage, h, false, m -> { }).entries()
                : Qcow2Snapshot.readTable(storage, h, newFileSize);
        st.snapshots = List.copyOf(table);
        st.snapshotsOffset = table.isEmpty() ? 0 : h.snapshotsOffset();
        tables.cache().clear();
        compressedReads.forget();
        st.fileSize = newFileSize;
        writeBack.forgetSyncedLength();
        st.header = h;
        st.l1Offset = h.l1TableOffset();
        st.l1 = Qcow2Tables.readTable(storage, h.l1TableOffset(), h.l1Size());
        if (st.refcounts != null) {
            st.refcounts = Qcow2Refcounts.open(storage, h, newFileSize);
        }
    }
}
