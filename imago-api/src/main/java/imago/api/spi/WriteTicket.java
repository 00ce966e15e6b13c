package imago.api.spi;

import imago.api.Mapping;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * One write in progress, from {@link FormatInstance#beginWrite}: the {@link #mapping() data mapping} the bytes go
 * to, whatever the layer holds for the write (an allocation, a claim on clusters, a lock), and the decision the
 * layer waits for. The writer {@linkplain #write writes} the bytes, then {@link #commit()}s; {@link #close()}
 * without a commit aborts, giving back what the write allocated. One thread uses a ticket from begin to close,
 * always in try-with-resources:
 *
 * <pre>{@code
 * try (WriteTicket t = layer.beginWrite(offset, length, below)) {
 *     t.write(src.slice(src.position(), (int) t.mapping().length()));
 *     t.commit();
 * }
 * }</pre>
 *
 * <p>A layer whose bytes are transformed on their way to storage (encryption) transforms them in
 * {@link #write}, inside the one I/O path.
 */
public interface WriteTicket extends AutoCloseable {

    /** Where the bytes go: starts at the requested offset, at most the requested length. */
    Mapping.Data mapping();

    /**
     * Writes the guest bytes of {@link #mapping()} ({@code src.remaining()} equals its length) to storage.
     *
     * @implSpec The default writes them unchanged at the mapping's host offset.
     * @throws IOException if the storage fails; the caller then closes the ticket without committing
     */
    default void write(ByteBuffer src) throws IOException {
        Mapping.Data d = mapping();
        d.storage().write(src, d.hostOffset());
    }

    /**
     * Writes the guest bytes of {@link #mapping()} from {@code source}, where they lie from {@code sourceOffset} on
     * unchanged: what reading them into a buffer and {@linkplain #write writing} it does.
     *
     * @implSpec The default reads them through a buffer and calls {@link #write}, so that a ticket that transforms
     *     the bytes (encryption) transforms these too. The ticket of {@link #of} hands the copy to the storage
     *     ({@link Storage#copyFrom}), which may copy without passing the bytes through memory.
     * @throws IOException if reading {@code source} or the write fails; the caller then closes the ticket without
     *     committing
     */
    default void copyFrom(Storage source, long sourceOffset) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocateDirect(Math.toIntExact(mapping().length()));
        source.read(buffer, sourceOffset);
        write(buffer.flip());
    }

    /**
     * The bytes are written: the layer may now point its metadata at them. At most once.
     *
     * @throws IOException if committing fails; the layer stays consistent
     */
    void commit() throws IOException;

    /**
     * Ends the write: after {@link #commit()} it releases what the write held; without one it aborts, so that
     * no metadata points at bytes that were not written.
     *
     * @throws IOException if rolling back fails
     */
    @Override
    void close() throws IOException;

    /**
     * A ticket for a mapping that is final when it is returned (raw, flat files, clusters already allocated):
     * commit and close have nothing to do.
     */
    static WriteTicket of(Mapping.Data mapping) {
        Objects.requireNonNull(mapping, "mapping");
        return new WriteTicket() {
            @Override
            public Mapping.Data mapping() {
                return mapping;
            }

            @Override
            public void copyFrom(Storage source, long sourceOffset) throws IOException {
                mapping.storage().copyFrom(source, sourceOffset, mapping.length(), mapping.hostOffset());
            }

            @Override
            public void commit() {
            }

            @Override
            public void close() {
            }
        };
    }
}
