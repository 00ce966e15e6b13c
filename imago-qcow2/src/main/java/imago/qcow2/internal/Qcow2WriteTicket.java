package imago.qcow2.internal;

import imago.api.Mapping;
import imago.api.spi.WriteTicket;
import java.io.IOException;

/**
 * One write of a {@link Qcow2Instance}, of the kind the allocating-write rooms ({@link Qcow2AllocatingWrites},
 * {@link Qcow2SubclusterWrites}) chose when they mapped it; each kind holds its own claim ({@link Qcow2Claims})
 * from begin to completion, on one thread, and completes exactly once: on {@link #commit()} (the data is written),
 * or on a {@link #close()} without a commit (it is not: what the write allocated is given back).
 */
abstract sealed class Qcow2WriteTicket implements WriteTicket
        permits Qcow2WriteTicket.InPlace, Qcow2WriteTicket.Held, Qcow2WriteTicket.InFlight {
    private final Mapping.Data mapping;
    private boolean completed;

    private Qcow2WriteTicket(Mapping.Data mapping) {
        this.mapping = mapping;
    }

    @Override
    public final Mapping.Data mapping() {
        return mapping;
    }

    @Override
    public final void commit() throws IOException {
        if (completed) {
            throw new IllegalStateException("write ticket already completed");
        }
        completed = true; // a failing commit must not be rolled back as well
        complete(true);
    }

    @Override
    public final void close() throws IOException {
        if (!completed) {
            completed = true;
            complete(false);
        }
    }

    /** Completes the write: {@code written}, the metadata may point at the data; otherwise it is given back. */
    abstract void complete(boolean written) throws IOException;

    /** A write into clusters (subclusters) of ours that are allocated: only the in-place read lock is held. */
    static final class InPlace extends Qcow2WriteTicket {
        private final Qcow2Claims claims;

        /** Takes the in-place read lock (under the allocation lock) until the write completes. */
        InPlace(Mapping.Data mapping, Qcow2Claims claims) {
            super(mapping);
            this.claims = claims;
            claims.beginInPlace();
        }

        @Override
        void complete(boolean written) {
            claims.endInPlace();
        }
    }

    /**
     * An allocating write that holds the allocation lock from its begin (the hold it was mapped under) to its
     * completion, which links its entries or gives its clusters back.
     */
    static final class Held extends Qcow2WriteTicket {
        private final Qcow2Claims claims;
        private final Qcow2Tables tables;
        private final Qcow2Allocation allocation;

        /** Keeps the caller's hold of the allocation lock until the write completes. */
        Held(Mapping.Data mapping, Qcow2Claims claims, Qcow2Tables tables, Qcow2Allocation allocation) {
            super(mapping);
            this.claims = claims;
            this.tables = tables;
            this.allocation = allocation;
            claims.hold();
        }

        @Override
        void complete(boolean written) throws IOException {
            try {
                tables.settle(allocation, written);
            } finally {
                claims.releaseHold();
            }
        }
    }

    /**
     * A write into a fresh run of host clusters, written without the allocation lock while its guest clusters
     * are claimed; its completion takes the lock, links the entries (or gives the run back) and ends the claim.
     */
    static final class InFlight extends Qcow2WriteTicket {
        private final Qcow2Claims claims;
        private final Qcow2Tables tables;
        private final Qcow2Allocation allocation;
        private final long firstCluster;

        /** Claims the guest clusters of {@code mapping} (under the allocation lock) until the write completes. */
        InFlight(Mapping.Data mapping, Qcow2Claims claims, Qcow2Tables tables, Qcow2Allocation allocation,
                int clusterBits) {
            super(mapping);
            this.claims = claims;
            this.tables = tables;
            this.allocation = allocation;
            this.firstCluster = mapping.offset() >>> clusterBits;
            claims.claim(firstCluster, allocation.count());
        }

        @Override
        void complete(boolean written) throws IOException {
            claims.lock();
            try {
                tables.settle(allocation, written);
            } finally {
                claims.release(firstCluster, allocation.count());
                claims.unlock();
            }
        }
    }
}
