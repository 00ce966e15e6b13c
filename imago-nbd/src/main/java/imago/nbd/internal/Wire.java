package imago.nbd.internal;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One connection's byte stream, for the server and the client alike: blocking reads of whole messages (by the
 * connection's reader thread only) and writes of whole messages, which the threads serving or sending requests
 * serialize through a lock so that messages never interleave.
 */
public final class Wire {
    /** The connection, replaced once by its TLS layer after {@code NBD_OPT_STARTTLS}. */
    private volatile ByteChannel channel;
    private final ReentrantLock writeLock = new ReentrantLock();

    public Wire(ByteChannel channel) {
        this.channel = channel;
    }

    /** The channel messages go through now. */
    public ByteChannel channel() {
        return channel;
    }

    /**
     * Sends and receives through {@code secured} from now on (the TLS layer over this wire's channel, after
     * {@code NBD_OPT_STARTTLS}); only while no other thread uses the wire.
     */
    public void upgrade(ByteChannel secured) {
        channel = secured;
    }

    /** Fills {@code dst}; the peer closing first is an {@link EOFException}. */
    public void readFully(ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            if (channel.read(dst) < 0) {
                throw new EOFException("the peer closed the connection " + dst.remaining() + " bytes early");
            }
        }
    }

    /** Reads {@code n} bytes into a new big-endian buffer, flipped. */
    public ByteBuffer read(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        readFully(b);
        return b.flip();
    }

    /** Reads and drops {@code n} bytes, a bounded buffer at a time. */
    public void skip(long n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate((int) Math.min(n, 64 * 1024));
        while (n > 0) {
            b.clear().limit((int) Math.min(n, b.capacity()));
            readFully(b);
            n -= b.limit();
        }
    }

    /** Writes the buffers as one message, whole, before any other thread's message. */
    public void write(ByteBuffer... buffers) throws IOException {
        writeLock.lock();
        try {
            long left = 0;
            for (ByteBuffer b : buffers) {
                left += b.remaining();
            }
            while (left > 0) {
                long n = channel instanceof GatheringByteChannel g ? g.write(buffers) : writeEach(buffers);
                left -= n;
            }
        } finally {
            writeLock.unlock();
        }
    }

    private long writeEach(ByteBuffer[] buffers) throws IOException {
        long n = 0;
        for (ByteBuffer b : buffers) {
            while (b.hasRemaining()) {
                n += channel.write(b);
            }
        }
        return n;
    }

    /** Closes the connection; blocked reads and writes fail. */
    public void close() {
        try {
            if (channel instanceof SocketChannel s && s.isOpen()) {
                try {
                    s.shutdownOutput();
                } catch (IOException ignored) {
                    // already gone
                }
            }
            channel.close();
        } catch (IOException ignored) {
            // closing a socket that failed: nothing more to do
        }
    }

    public boolean isOpen() {
        return channel.isOpen();
    }
}
