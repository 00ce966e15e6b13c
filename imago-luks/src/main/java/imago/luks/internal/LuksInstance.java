package imago.luks.internal;

import imago.api.ImageException;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.Secrets;
import imago.api.spi.Amender;
import imago.api.spi.BackingReader;
import imago.api.spi.FormatInstance;
import imago.api.spi.Resizer;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import imago.luks.crypto.SectorCipher;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.DoubleConsumer;

/**
 * One open LUKS1 container: the guest bytes are the payload, encrypted in 512-byte sectors numbered from the
 * payload's start (the sector number is the IV, as QEMU's luks driver and dm-crypt number them). Reads map the
 * payload as {@link Mapping.Special} and decrypt in {@link #readSpecial}; writes encrypt in their ticket's
 * {@code write}, reading back the rest of a sector they cover only in part. Without a key (opened for {@code info}
 * without a secret) the header can be shown but no guest byte read or written.
 *
 * <p>Ciphers are not thread-safe: each request borrows one from a pool. Partial-sector writes hold one lock across
 * their read-decrypt-merge-encrypt-write, so that two writes to different bytes of one sector keep both.
 */
final class LuksInstance implements FormatInstance, Resizer, Amender {
    private static final int CHUNK = 1 << 20;

    private final String resource;
    private final Storage storage;
    /** Replaced when {@code amend} changes a key slot. */
    private volatile LuksHeader header;
    /** The secrets the image was opened with, for {@code amend}'s new-secret and old-secret. */
    private Secrets secrets = Secrets.none();
    private long maxIterations = LuksKeys.DEFAULT_MAX_ITERATIONS;
    private final long payload;
    private final boolean writable;
    private final byte[] key;
    private final ConcurrentLinkedQueue<SectorCipher> ciphers = new ConcurrentLinkedQueue<>();
    private final ReentrantLock partialSectors = new ReentrantLock();
    private volatile long size;

    /** @param key the master key, which the instance now owns and wipes on close; {@code null} if locked */
    LuksInstance(Storage storage, LuksHeader header, byte[] key, boolean writable) throws IOException {
        this.resource = storage.name();
        this.storage = storage;
        this.header = header;
        this.payload = header.payloadSector() * LuksHeader.SECTOR;
        this.key = key;
        this.writable = writable;
        // QEMU's block layer counts the file in whole sectors: a 1000-byte payload is a 1024-byte disk
        this.size = roundUp(storage.size()) - payload;
    }

    /** Keeps the open's secrets and iteration limit for {@link #amend}. @return this */
    LuksInstance forAmend(Secrets openSecrets, long limit) {
        this.secrets = openSecrets;
        this.maxIterations = limit;
        return this;
    }

    /**
     * {@inheritDoc} The key slots, as {@code qemu-img amend -o state=active|inactive,keyslot=N,new-secret=ID,
     * old-secret=ID,iter-time=MS} changes them ({@link LuksKeySlotAmend}).
     */
    @Override
    public void amend(Map<String, String> options, boolean force, DoubleConsumer progress, Resize resize)
            throws IOException {
        requireWritable(0);
        requireKey();
        progress.accept(0);
        header = LuksKeySlotAmend.amend(storage, header, key, options, "", secrets, force, maxIterations);
        progress.accept(1);
    }

    private static long roundUp(long n) {
        return (n + LuksHeader.SECTOR - 1) / LuksHeader.SECTOR * LuksHeader.SECTOR;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        long n = Math.min(maxLength, size - offset);
        if (n <= 0) {
            return new Mapping.EndOfImage(offset);
        }
        requireKey();
        return new Mapping.Special(offset, n, "encrypted");
    }

    private void requireKey() throws ImageException {
        if (key == null) {
            throw new ImageException(resource, "Parameter 'key-secret' is required for cipher");
        }
    }

    @Override
    public void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) throws IOException {
        requireKey();
        long pos = offset;
        while (dst.hasRemaining()) {
            long first = pos / LuksHeader.SECTOR;
            int within = (int) (pos % LuksHeader.SECTOR);
            int n = Math.min(dst.remaining(), CHUNK - within);
            int span = (int) (roundUp(within + n));
            byte[] buf = new byte[span];
            storage.read(ByteBuffer.wrap(buf), payload + first * LuksHeader.SECTOR);
            crypt(buf, span, first, false);
            dst.put(buf, within, n);
            pos += n;
        }
    }

    private void crypt(byte[] buf, int len, long firstSector, boolean encrypt) {
        SectorCipher c = ciphers.poll();
        if (c == null) {
            c = header.spec().cipher(key);
        }
        try {
            if (encrypt) {
                c.encrypt(buf, 0, len, firstSector);
            } else {
                c.decrypt(buf, 0, len, firstSector);
            }
        } finally {
            ciphers.offer(c);
        }
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        requireWritable(offset);
        requireKey();
        long n = Math.min(length, size - offset);
        Mapping.Data data = new Mapping.Data(offset, n, storage, payload + offset);
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

    private void requireWritable(long offset) throws ReadOnlyImageException {
        if (!writable) {
            throw new ReadOnlyImageException(resource, offset, "image is opened read-only");
        }
    }

    /** Encrypts {@code src} into the payload at guest {@code offset}: partial sectors at the ends, whole between. */
    private void encryptAndWrite(ByteBuffer src, long offset) throws IOException {
        ByteBuffer rest = src.slice();
        long pos = offset;
        int within = (int) (pos % LuksHeader.SECTOR);
        if (within != 0) {
            int n = Math.min(rest.remaining(), LuksHeader.SECTOR - within);
            writePartial(rest.slice(rest.position(), n), pos);
            rest.position(rest.position() + n);
            pos += n;
        }
        while (rest.remaining() >= LuksHeader.SECTOR) {
            int n = Math.min(CHUNK, rest.remaining() / LuksHeader.SECTOR * LuksHeader.SECTOR);
            byte[] buf = new byte[n];
            rest.get(buf);
            crypt(buf, n, pos / LuksHeader.SECTOR, true);
            storage.write(ByteBuffer.wrap(buf), payload + pos);
            pos += n;
        }
        if (rest.hasRemaining()) {
            writePartial(rest, pos);
        }
    }

    private void writePartial(ByteBuffer part, long pos) throws IOException {
        long sector = pos / LuksHeader.SECTOR;
        long host = payload + sector * LuksHeader.SECTOR;
        byte[] buf = new byte[LuksHeader.SECTOR];
        partialSectors.lock();
        try {
            storage.read(ByteBuffer.wrap(buf), host);
            crypt(buf, buf.length, sector, false);
            part.get(buf, (int) (pos % LuksHeader.SECTOR), part.remaining());
            crypt(buf, buf.length, sector, true);
            storage.write(ByteBuffer.wrap(buf), host);
        } finally {
            partialSectors.unlock();
        }
    }

    @Override
    public void resize(long newSize, Preallocation preallocation, BackingReader below) throws IOException {
        requireWritable(newSize);
        // the file keeps whole sectors: cut inside the new last one, its ciphertext would be short and the bytes below
        // the new end in it would decrypt to noise (QEMU's luks driver cuts there and loses them)
        storage.resize(payload + roundUp(newSize), preallocation);
        size = roundUp(newSize);
    }

    @Override
    public void flush() throws IOException {
        storage.flush();
    }

    @Override
    public void sync() throws IOException {
        storage.sync();
    }

    /** qemu-img's {@code QCryptoBlockInfoLUKS}. */
    @Override
    public Map<String, Object> formatSpecific() {
        return info(header);
    }

    /** qemu-img's {@code QCryptoBlockInfoLUKS} of {@code header} (for the luks format and embedded headers). */
    static Map<String, Object> info(LuksHeader header) {
        long payload = header.payloadSector() * LuksHeader.SECTOR;
        LuksCipherSpec spec = header.spec();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cipher-alg", spec.algName());
        m.put("cipher-mode", spec.modeName());
        m.put("ivgen-alg", spec.ivgenName());
        if (spec.ivHash() != null) {
            m.put("ivgen-hash-alg", spec.ivHash().luksName());
        }
        m.put("hash-alg", header.hash().luksName());
        m.put("payload-offset", payload);
        m.put("master-key-iters", header.mkIterations());
        m.put("uuid", header.uuid());
        List<Object> slots = new ArrayList<>();
        for (LuksKeySlot s : header.slots()) {
            Map<String, Object> slot = new LinkedHashMap<>();
            slot.put("active", s.active());
            if (s.active()) {
                slot.put("iters", s.iterations());
                slot.put("stripes", s.stripes());
            }
            slot.put("key-offset", s.materialSector() * LuksHeader.SECTOR);
            slots.add(slot);
        }
        m.put("slots", slots);
        return m;
    }

    @Override
    public void close() {
        if (key != null) {
            Arrays.fill(key, (byte) 0);
        }
        ciphers.clear();
    }

    @Override
    public String toString() {
        return "LuksInstance[" + resource + ", " + header + (key == null ? ", locked" : "") + "]";
    }
}
