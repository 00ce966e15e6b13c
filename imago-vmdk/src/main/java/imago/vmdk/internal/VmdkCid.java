package imago.vmdk.internal;

import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;

/**
 * The descriptor's content ID as an open image keeps it: on the first change after opening it gets a new CID (as
 * VMware and QEMU do, so that a child made from this image can tell its parent has changed). The new CID has as
 * many hex digits as the old one, so the rewrite is one in-place write of those digits, synced before the change it
 * announces.
 */
final class VmdkCid {
    private final Storage storage;
    private final VmdkDescriptor descriptor;
    private final LongSupplier cids;
    private final ReentrantLock lock = new ReentrantLock();
    private volatile boolean renewed;
    private volatile long current;

    VmdkCid(Storage storage, VmdkDescriptor descriptor, LongSupplier cids) {
        this.storage = storage;
        this.descriptor = descriptor;
        this.cids = cids;
        this.current = descriptor.cid();
    }

    /** The CID the descriptor holds now. */
    long current() {
        return current;
    }

    /** Gives the descriptor a new CID, once per open, before the first change. */
    void renew() throws IOException {
        if (renewed) {
            return;
        }
        lock.lock();
        try {
            if (renewed) {
                return;
            }
            int width = descriptor.cidEnd() - descriptor.cidStart();
            long limit = width >= 8 ? 1L << 32 : 1L << (4 * width);
            long next;
            do {
                next = Long.remainderUnsigned(cids.getAsLong(), limit);
            } while (next == descriptor.cid());
            byte[] text = descriptor.withCid(next);
            ByteBuffer digits = ByteBuffer.wrap(text, descriptor.cidStart(), width);
            storage.write(digits, descriptor.base() + descriptor.cidStart());
            storage.flush();
            storage.sync();
            current = next;
            renewed = true;
        } finally {
            lock.unlock();
        }
    }
}
