package imago.cli.convert;

import imago.api.PendingWrite;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The writes of one chunk of a {@link Converter}, recorded by the thread that reads the chunk and made when the chunk
 * may write (in guest order: once the chunks before it are written), possibly by another thread. The data they write
 * lies in the chunk's buffer, which is not read into again before they are made.
 */
final class ChunkWrites {
    /** What a write does to the target. */
    enum Kind {
        /** Writes {@code data} at {@code offset}. */
        DATA,
        /** Stores a cluster at {@code offset} that is compressed already ({@code pending}). */
        COMPRESSED,
        /** Writes {@code length} zero bytes as data, so that they are allocated ({@code -S 0}). */
        ZEROES,
        /** Makes {@code length} bytes read as zero, deallocating them where the target can. */
        UNMAP,
        /**
         * Copies {@code length} bytes of the source, by the kernel where it can; {@code data} is the room to read
         * them into where it cannot.
         */
        OFFLOAD
    }

    /**
     * One write; {@code data} is {@code null} for {@link Kind#ZEROES}, {@link Kind#UNMAP} and
     * {@link Kind#COMPRESSED}, {@code pending} is {@code null} except for {@link Kind#COMPRESSED}.
     */
    record Write(Kind kind, long offset, long length, ByteBuffer data, PendingWrite pending) {
    }

    private final long index;
    private final long start;
    private final int length;
    private final ByteBuffer buffer;
    private final List<Write> writes = new ArrayList<>();

    /**
     * @param index the chunk's number: its guest bytes start at {@code index * Converter.CHUNK}
     * @param start the guest offset of its first byte
     * @param length its length in bytes, at most the buffer's capacity
     * @param buffer where its bytes are read into
     */
    ChunkWrites(long index, long start, int length, ByteBuffer buffer) {
        this.index = index;
        this.start = start;
        this.length = length;
        this.buffer = buffer;
    }

    long index() {
        return index;
    }

    long start() {
        return start;
    }

    int length() {
        return length;
    }

    ByteBuffer buffer() {
        return buffer;
    }

    /** The part of the buffer that holds the guest bytes {@code [offset, offset + n)} of this chunk. */
    ByteBuffer room(long offset, int n) {
        return buffer.slice((int) (offset - start), n);
    }

    /** Records a write, made after those recorded before it. */
    void add(Kind kind, long offset, long length, ByteBuffer data) {
        writes.add(new Write(kind, offset, length, data, null));
    }

    /** Records the store of a cluster compressed by the reading thread: chunks compress in parallel, store in turn. */
    void addCompressed(long offset, long length, PendingWrite pending) {
        writes.add(new Write(Kind.COMPRESSED, offset, length, null, pending));
    }

    /** The writes in the order they are to be made. */
    List<Write> writes() {
        return writes;
    }
}
