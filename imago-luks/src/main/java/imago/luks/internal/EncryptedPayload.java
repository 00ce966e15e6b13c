package imago.luks.internal;

import imago.api.ImageException;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The guest disk of a LUKS container: the bytes from host offset {@code start} on, encrypted in units of
 * {@code sectorSize} bytes, guest sector {@code n} with IV {@code n + firstIv} (LUKS1: 512-byte sectors numbered
 * from the payload's start, as QEMU's luks driver and dm-crypt number them; LUKS2: the data segment's sector size
 * and {@code iv_tweak}). It reads and decrypts, and encrypts and writes, reading back the rest of a sector a write
 * covers only in part; the LUKS1 and LUKS2 instances keep only their headers, keys and sizes. Reads decrypt in the
 * caller's buffer, so that a sector's bytes are copied once, from the storage; the ciphers ({@link CipherPool}) run
 * in the reading and writing threads, as many at once as there are.
 *
 * <p>Without a key (a container opened for {@code info} without a secret) nothing can be read or written. Partial
 * sectors are written under one lock across their read-decrypt-merge-encrypt-write, so that two writes to
 * different bytes of one sector keep both.
 */
final class EncryptedPayload {
    private static final int CHUNK = 1 << 20;

    private final Storage storage;
    private final String resource;
    private final long start;
    private final int sectorSize;
    private final long firstIv;
    /** {@code null} without a key. */
    private final CipherPool ciphers;
    private final boolean writable;
    private final ReentrantLock partialSectors = new ReentrantLock();
    /**
     * Direct buffers that writes encrypt into, one per writing thread, reused: the storage writes a direct buffer
     * without copying it first, and no write allocates.
     */
    private final ConcurrentLinkedQueue<ByteBuffer> outputs = new ConcurrentLinkedQueue<>();
    private volatile long size;

    /**
     * @param start the host offset of guest byte 0
     * @param sectorSize the encryption unit: 512 or, for LUKS2, up to 4096 bytes
     * @param firstIv the IV of guest sector 0
     * @param ciphers the key's ciphers over {@code sectorSize} units, or {@code null} without a key
     * @param size the guest size in bytes
     */
    EncryptedPayload(Storage storage, long start, int sectorSize, long firstIv, CipherPool ciphers, boolean writable,
            long size) {
        this.storage = storage;
        this.resource = storage.name();
        this.start = start;
        this.sectorSize = sectorSize;
        this.firstIv = firstIv;
        this.ciphers = ciphers;
        this.writable = writable;
        this.size = size;
    }

    /** The host offset of guest byte 0. */
    long start() {
        return start;
    }

    /** The guest size in bytes. */
    long size() {
        return size;
    }

    /** Sets the guest size, once the storage has been resized for it. */
    void resized(long newSize) {
        size = newSize;
    }

    /** {@code n} bytes rounded up to whole sectors of {@code sectorSize} bytes. */
    static long roundUp(long n, int sectorSize) {
        return (n + sectorSize - 1) / sectorSize * sectorSize;
    }

    /** The guest bytes from {@code offset} on, up to {@code maxLength}: one encrypted (special) mapping. */
    Mapping mapping(long offset, long maxLength) throws ImageException {
        long n = Math.min(maxLength, size - offset);
        if (n <= 0) {
            return new Mapping.EndOfImage(offset);
        }
        requireKey();
        return new Mapping.Special(offset, n, "encrypted");
    }

    /** Throws if there is no key. */
    void requireKey() throws ImageException {
        if (ciphers == null) {
            throw new ImageException(resource, "Parameter 'key-secret' is required for cipher");
        }
    }

    /** Throws if the container was opened read-only. */
    void requireWritable(long offset) throws ReadOnlyImageException {
        if (!writable) {
            throw new ReadOnlyImageException(resource, offset, "image is opened read-only");
        }
    }

    /**
     * Fills {@code dst} with the guest bytes from {@code offset}. The whole sectors are read straight into
     * {@code dst} and decrypted there, in place; a sector the request covers only in part is read and decrypted
     * on its own.
     */
    void read(ByteBuffer dst, long offset) throws IOException {
        requireKey();
        long pos = offset;
        int within = (int) (pos % sectorSize);
        if (within != 0 && dst.hasRemaining()) {
            int n = Math.min(dst.remaining(), sectorSize - within);
            readPartial(dst, pos, n);
            pos += n;
        }
        int whole = dst.remaining() / sectorSize * sectorSize;
        if (whole > 0) {
            storage.read(dst.slice(dst.position(), whole), start + pos);
            ciphers.decrypt(dst.slice(dst.position(), whole), pos / sectorSize + firstIv);
            dst.position(dst.position() + whole);
            pos += whole;
        }
        if (dst.hasRemaining()) {
            readPartial(dst, pos, dst.remaining());
        }
    }

    /** Puts the {@code n} guest bytes at {@code pos}, all in one sector, into {@code dst}. */
    private void readPartial(ByteBuffer dst, long pos, int n) throws IOException {
        long sector = pos / sectorSize;
        byte[] buf = new byte[sectorSize];
        storage.read(ByteBuffer.wrap(buf), start + sector * sectorSize);
        ciphers.decrypt(buf, 0, sectorSize, sector + firstIv);
        dst.put(buf, (int) (pos % sectorSize), n);
    }

    /** A ticket whose {@code write} encrypts into the payload at guest {@code offset} (nothing to allocate). */
    WriteTicket beginWrite(long offset, long length) throws IOException {
        requireWritable(offset);
        requireKey();
        long n = Math.min(length, size - offset);
        Mapping.Data data = new Mapping.Data(offset, n, storage, start + offset);
        return new WriteTicket() {
            @Override
            public Mapping.Data mapping() {
                return data;
            }

            @Override
            public void write(ByteBuffer src) throws IOException {
                encryptAndWrite(src, offset);
            }

            @Override
            public void commit() {
            }

            @Override
            public void close() {
            }
        };
    }

    /** Encrypts {@code src} into the payload at guest {@code offset}: partial sectors at the ends, whole between. */
    private void encryptAndWrite(ByteBuffer src, long offset) throws IOException {
        ByteBuffer rest = src.slice();
        long pos = offset;
        int within = (int) (pos % sectorSize);
        if (within != 0) {
            int n = Math.min(rest.remaining(), sectorSize - within);
            writePartial(rest.slice(rest.position(), n), pos);
            rest.position(rest.position() + n);
            pos += n;
        }
        while (rest.remaining() >= sectorSize) {
            int n = Math.min(CHUNK, rest.remaining() / sectorSize * sectorSize);
            ByteBuffer out = outputs.poll();
            if (out == null) {
                out = ByteBuffer.allocateDirect(CHUNK);
            }
            try {
                out.clear().limit(n);
                ciphers.encrypt(rest.slice(rest.position(), n), out, pos / sectorSize + firstIv);
                storage.write(out, start + pos);
            } finally {
                outputs.offer(out);
            }
            rest.position(rest.position() + n);
            pos += n;
        }
        if (rest.hasRemaining()) {
            writePartial(rest, pos);
        }
    }

    private void writePartial(ByteBuffer part, long pos) throws IOException {
        long sector = pos / sectorSize;
        long host = start + sector * sectorSize;
        byte[] buf = new byte[sectorSize];
        partialSectors.lock();
        try {
            storage.read(ByteBuffer.wrap(buf), host);
            ciphers.decrypt(buf, 0, buf.length, sector + firstIv);
            part.get(buf, (int) (pos % sectorSize), part.remaining());
            ciphers.encrypt(buf, 0, buf.length, sector + firstIv);
            storage.write(ByteBuffer.wrap(buf), host);
        } finally {
            partialSectors.unlock();
        }
    }

    /** Drops the ciphers and buffers; the key's owner wipes the key. */
    void close() {
        if (ciphers != null) {
            ciphers.clear();
        }
        outputs.clear();
    }
}
