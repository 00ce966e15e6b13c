package imago.luks.internal;

import imago.api.ImageException;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.spi.BackingReader;
import imago.api.spi.FormatInstance;
import imago.api.spi.Resizer;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * What an open LUKS1 and an open LUKS2 container share: the guest bytes are an {@link EncryptedPayload} (one
 * encrypted mapping, decrypted on read and encrypted on write), and the key is wiped on close. The subclasses keep
 * their header, its {@code info}, resizing and key-slot changes.
 */
abstract sealed class AbstractLuksInstance implements FormatInstance, Resizer permits LuksInstance, Luks2Instance {
    final Storage storage;
    /** The master (volume) key, owned and wiped on close; {@code null} if locked. */
    final byte[] key;
    final EncryptedPayload payload;

    AbstractLuksInstance(Storage storage, byte[] key, EncryptedPayload payload) {
        this.storage = storage;
        this.key = key;
        this.payload = payload;
    }

    /** Throws if the container was opened without a key. */
    final void requireKey() throws ImageException {
        payload.requireKey();
    }

    /** Throws if the container was opened read-only. */
    final void requireWritable(long offset) throws ReadOnlyImageException {
        payload.requireWritable(offset);
    }

    @Override
    public final long size() {
        return payload.size();
    }

    @Override
    public final Mapping mapping(long offset, long maxLength) throws IOException {
        return payload.mapping(offset, maxLength);
    }

    @Override
    public final void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) throws IOException {
        payload.read(dst, offset);
    }

    @Override
    public final WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        return payload.beginWrite(offset, length);
    }

    @Override
    public final void flush() throws IOException {
        storage.flush();
    }

    @Override
    public final void sync() throws IOException {
        storage.sync();
    }

    @Override
    public final void close() {
        payload.close();
        if (key != null) {
            Arrays.fill(key, (byte) 0);
        }
    }

    /** The header, as {@link #toString} shows it. */
    abstract Object header();

    @Override
    public final String toString() {
        return getClass().getSimpleName() + "[" + storage.name() + ", " + header() + (key == null ? ", locked" : "")
                + "]";
    }
}
