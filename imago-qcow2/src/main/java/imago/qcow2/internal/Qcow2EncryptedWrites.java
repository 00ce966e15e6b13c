package imago.qcow2.internal;

import imago.api.ImageException;
import imago.api.Mapping;
import imago.api.spi.BackingReader;
import imago.api.spi.WriteTicket;
import imago.qcow2.internal.Qcow2Mapping.Unit;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes to an encrypted image: data is encrypted in whole 512-byte sectors, so a write is widened to the sectors
 * it touches (the allocating write then copies on write only whole sectors, encrypted), and the bytes of a partly
 * covered first or last sector are what the guest read there before (QEMU's block layer does this read-modify-write
 * as the image's request alignment). Partial-sector writes hold one lock from that read to their completion, so
 * that two writes into different bytes of one sector keep both.
 */
final class Qcow2EncryptedWrites extends Qcow2Room {
    /** The allocating write of whole sectors this wraps. */
    @FunctionalInterface
    interface Begin {
        WriteTicket begin(long offset, long length, BackingReader below) throws IOException;
    }

    private static final int SECTOR = Qcow2Crypto.SECTOR;

    private final Qcow2Mapping mapping;
    private final Qcow2CompressedReads compressedReads;
    private final ReentrantLock partialSectors = new ReentrantLock();

    Qcow2EncryptedWrites(Qcow2State st, Qcow2Mapping mapping, Qcow2CompressedReads compressedReads) {
        super(st);
        this.mapping = mapping;
        this.compressedReads = compressedReads;
    }

    WriteTicket begin(long offset, long length, BackingReader below, Begin inner) throws IOException {
        st.crypto.requireKey();
        long end = offset + length;
        long from = offset & -SECTOR;
        long to = Math.min((end + SECTOR - 1) & -SECTOR, st.addressEnd(offset));
        if (from == offset && to == end) {
            return new Encrypting(inner.begin(offset, length, below), length, 0, null, null, false);
        }
        partialSectors.lock();
        boolean handedOver = false;
        try {
            byte[] head = from < offset ? oldSector(from, below) : null;
            byte[] tail = to > end ? (to - SECTOR == from && head != null ? head : oldSector(to - SECTOR, below))
                    : null;
            WriteTicket t = inner.begin(from, to - from, below);
            Encrypting e = new Encrypting(t, length, (int) (offset - from), head, tail, true);
            handedOver = true;
            return e;
        } finally {
            if (!handedOver) {
                partialSectors.unlock();
            }
        }
    }

    /** The 512 guest bytes from {@code pos} (a sector of this layer) as the guest reads them now. */
    private byte[] oldSector(long pos, BackingReader below) throws IOException {
        byte[] buf = new byte[SECTOR];
        Unit u = mapping.unit(pos);
        switch (u.kind()) {
            case DATA -> st.readData(ByteBuffer.wrap(buf), u.host());
            case ZERO_PLAIN, ZERO_ALLOC -> {
            }
            case UNALLOCATED -> below.read(ByteBuffer.wrap(buf), pos);
            case COMPRESSED -> {
                long clusterStart = pos & -(long) clusterSize;
                byte[] plain = compressedReads.decompressed(u.entry(), clusterStart);
                System.arraycopy(plain, (int) (pos - clusterStart), buf, 0, SECTOR);
            }
            default -> throw new ImageException(resource, "unexpected unit " + u);
        }
        return buf;
    }

    /**
     * The ticket of a widened write: its mapping is the caller's bytes within the inner ticket's sectors, and its
     * write encrypts them together with the old bytes of the partial sectors around them.
     */
    private final class Encrypting implements WriteTicket {
        private final WriteTicket inner;
        private final int lead;
        private final byte[] head;
        private final byte[] tail;
        private final boolean locked;
        private final Mapping.Data mapping;
        private boolean released;

        /** @param requested the caller's length, from {@code lead} bytes into the inner ticket's mapping */
        Encrypting(WriteTicket inner, long requested, int lead, byte[] head, byte[] tail, boolean locked) {
            this.inner = inner;
            this.lead = lead;
            this.head = head;
            this.tail = tail;
            this.locked = locked;
            Mapping.Data d = inner.mapping();
            long wanted = Math.min(d.length() - lead, requested);
            this.mapping = new Mapping.Data(d.offset() + lead, wanted, d.storage(), d.hostOffset() + lead);
        }

        @Override
        public Mapping.Data mapping() {
            return mapping;
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
            Mapping.Data d = inner.mapping();
            int n = src.remaining();
            int span = (lead + n + SECTOR - 1) / SECTOR * SECTOR;
            ByteBuffer buf = ByteBuffer.allocate(span);
            if (lead > 0) {
                buf.put(head, 0, lead);
            }
            buf.put(src);
            if (buf.hasRemaining()) {
                buf.put(tail, (lead + n) % SECTOR, buf.remaining());
            }
            st.writeData(buf.flip(), d.hostOffset());
        }

        @Override
        public void commit() throws IOException {
            inner.commit();
        }

        @Override
        public void close() throws IOException {
            try {
                inner.close();
            } finally {
                if (locked && !released) {
                    released = true;
                    partialSectors.unlock();
                }
            }
        }
    }
}
