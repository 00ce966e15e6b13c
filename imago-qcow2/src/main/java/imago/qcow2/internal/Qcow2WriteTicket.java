package imago.qcow2.internal;

import imago.api.Mapping;
import imago.api.spi.WriteTicket;
import java.io.IOException;

/**
 * One write of a {@link Qcow2Instance}: {@link Qcow2Instance#ensureDataMapping} allocated (or found) the clusters
 * and may hold the allocation lock, an in-place read lock or a claim on in-flight clusters until
 * {@link Qcow2Instance#completeWrite} runs, exactly once, on the same thread: with no failure on
 * {@link #commit()}, with one on a {@link #close()} that was not committed (the clusters are given back).
 */
final class Qcow2WriteTicket implements WriteTicket {
    private final Qcow2Instance layer;
    private final Mapping.Data mapping;
    private boolean completed;

    Qcow2WriteTicket(Qcow2Instance layer, Mapping.Data mapping) {
        this.layer = layer;
        this.mapping = mapping;
    }

    @Override
    public Mapping.Data mapping() {
        return mapping;
    }

    @Override
    public void commit() throws IOException {
        if (completed) {
            throw new IllegalStateException("write ticket already completed");
        }
        completed = true; // a failing commit must not be rolled back as well
        layer.completeWrite(mapping, null);
    }

    @Override
    public void close() throws IOException {
        if (!completed) {
            completed = true;
            layer.completeWrite(mapping, new IOException("the write of " + mapping.length() + " bytes at guest offset "
                    + mapping.offset() + " was not completed"));
        }
    }
}
