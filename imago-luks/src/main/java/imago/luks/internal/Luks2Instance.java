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
import imago.luks.crypto.IvGenerator;
import imago.luks.crypto.SectorCipher;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.DoubleConsumer;

/**
 * One open LUKS2 container: the guest bytes are the data segment, encrypted in units of the segment's sector size
 * (512 to 4096 bytes), each unit's IV its number counted in that unit from the segment's start plus the segment's
 * {@code iv_tweak} (as cryptsetup maps LUKS2, with dm-crypt's large-sector IVs). A {@code dynamic} segment runs to
 * the end of the file, in whole sectors. Reads map as {@link Mapping.Special} and decrypt; writes encrypt,
 * reading back the rest of a sector they cover only in part under one lock, as the LUKS1 instance does. Without a
 * key only {@code info} works.
 */
final class Luks2Instance implements FormatInstance, Resizer, Amender {
    private static final int CHUNK = 1 << 20;

    private final String resource;
    private final Storage storage;
    /** Replaced when {@code amend} changes the key slots (the data segment stays as it is). */
    private volatile Luks2Header header;
    /** The secrets and KDF limits of the open, for {@code amend}'s new-secret and old-secret. */
    private Secrets secrets = Secrets.none();
    private Luks2Keys.Limits limits;
    private final long offset;
    private final int unit;
    private final long ivTweak;
    private final boolean writable;
    private final byte[] key;
    private final ConcurrentLinkedQueue<SectorCipher> ciphers = new ConcurrentLinkedQueue<>();
    private final ReentrantLock partialSectors = new ReentrantLock();
    private volatile long size;

    /** @param key the volume key, which the instance now owns and wipes on close; {@code null} if locked */
    Luks2Instance(Storage storage, Luks2Header header, byte[] key, boolean writable) throws IOException {
        this.resource = storage.name();
        this.storage = storage;
        this.header = header;
        Luks2Metadata.Segment s = header.metadata().segment();
        this.offset = s.offset();
        this.unit = s.sectorSize();
        this.ivTweak = s.ivTweak();
        this.key = key;
        this.writable = writable;
        long available = (storage.size() - offset) / unit * unit;
        if (s.size() >= 0 && s.size() > available) {
            throw new imago.api.CorruptImageException(resource, offset, "LUKS2 data segment of " + s.size() + " bytes at " + offset
                    + " ends past the end of the file (" + storage.size() + " bytes)");
        }
        this.size = s.size() >= 0 ? s.size() : available;
    }

    /** Keeps the open's secrets and KDF limits for {@link #amend}. @return this */
    Luks2Instance forAmend(Secrets openSecrets, Luks2Keys.Limits openLimits) {
        this.secrets = openSecrets;
        this.limits = openLimits;
        return this;
    }

    /**
     * {@inheritDoc} The key slots, with the options of {@code qemu-img amend} for LUKS1 ({@code state},
     * {@code keyslot}, {@code new-secret}, {@code old-secret}, {@code iter-time}) and imago's {@code pbkdf},
     * {@code pbkdf-memory} and {@code pbkdf-parallel} ({@link Luks2KeySlots}).
     */
    @Override
    public void amend(Map<String, String> options, boolean force, DoubleConsumer progress, Resize resize)
            throws IOException {
        requireWritable(0);
        requireKey();
        progress.accept(0);
        header = Luks2KeySlots.amend(storage, header, key, options, secrets, force, limits);
        progress.accept(1);
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public Mapping mapping(long at, long maxLength) throws IOException {
        long n = Math.min(maxLength, size - at);
        if (n <= 0) {
            return new Mapping.EndOfImage(at);
        }
        requireKey();
        return new Mapping.Special(at, n, "encrypted");
    }

    private void requireKey() throws ImageException {
        if (key == null) {
            throw new ImageException(resource, "Parameter 'key-secret' is required for cipher");
        }
    }

    @Override
    public void readSpecial(Mapping.Special mapping, ByteBuffer dst, long at) throws IOException {
        requireKey();
        long pos = at;
        while (dst.hasRemaining()) {
            long first = pos / unit;
            int within = (int) (pos % unit);
            int n = Math.min(dst.remaining(), CHUNK - within);
            int span = (int) roundUp(within + n);
            byte[] buf = new byte[span];
            storage.read(ByteBuffer.wrap(buf), offset + first * unit);
            crypt(buf, span, first, false);
            dst.put(buf, within, n);
            pos += n;
        }
    }

    private long roundUp(long n) {
        return (n + unit - 1) / unit * unit;
    }

    private void crypt(byte[] buf, int len, long firstSector, boolean encrypt) {
        SectorCipher c = ciphers.poll();
        if (c == null) {
            LuksCipherSpec spec = header.segmentCipher();
            c = SectorCipher.of(spec.mode(), key, IvGenerator.of(spec.ivgen(), spec.ivHash(), key), unit);
        }
        try {
            if (encrypt) {
                c.encrypt(buf, 0, len, firstSector + ivTweak);
            } else {
                c.decrypt(buf, 0, len, firstSector + ivTweak);
            }
        } finally {
            ciphers.offer(c);
        }
    }

    @Override
    public WriteTicket beginWrite(long at, long length, BackingReader below) throws IOException {
        requireWritable(at);
        requireKey();
        long n = Math.min(length, size - at);
        Mapping.Data data = new Mapping.Data(at, n, storage, offset + at);
        return new WriteTicket() {
            @Override
            public Mapping.Data mapping() {
                return data;
            }

            @Override
            public void write(ByteBuffer src) throws IOException {
                encryptAndWrite(src, at);
            }

            @Override
            public void commit() {
            }

            @Override
            public void close() {
            }
        };
    }

    private void requireWritable(long at) throws ReadOnlyImageException {
        if (!writable) {
            throw new ReadOnlyImageException(resource, at, "image is opened read-only");
        }
    }

    /** Encrypts {@code src} into the segment at guest {@code at}: partial sectors at the ends, whole between. */
    private void encryptAndWrite(ByteBuffer src, long at) throws IOException {
        ByteBuffer rest = src.slice();
        long pos = at;
        int within = (int) (pos % unit);
        if (within != 0) {
            int n = Math.min(rest.remaining(), unit - within);
            writePartial(rest.slice(rest.position(), n), pos);
            rest.position(rest.position() + n);
            pos += n;
        }
        while (rest.remaining() >= unit) {
            int n = Math.min(CHUNK, rest.remaining() / unit * unit);
            byte[] buf = new byte[n];
            rest.get(buf);
            crypt(buf, n, pos / unit, true);
            storage.write(ByteBuffer.wrap(buf), offset + pos);
            pos += n;
        }
        if (rest.hasRemaining()) {
            writePartial(rest, pos);
        }
    }

    private void writePartial(ByteBuffer part, long pos) throws IOException {
        long sector = pos / unit;
        long host = offset + sector * unit;
        byte[] buf = new byte[unit];
        partialSectors.lock();
        try {
            storage.read(ByteBuffer.wrap(buf), host);
            crypt(buf, buf.length, sector, false);
            part.get(buf, (int) (pos % unit), part.remaining());
            crypt(buf, buf.length, sector, true);
            storage.write(ByteBuffer.wrap(buf), host);
        } finally {
            partialSectors.unlock();
        }
    }

    @Override
    public void resize(long newSize, Preallocation preallocation, BackingReader below) throws IOException {
        requireWritable(newSize);
        if (header.metadata().segment().size() >= 0) {
            throw new ImageException(resource, "LUKS2 data segment has a fixed size of "
                    + header.metadata().segment().size() + " bytes (only a dynamic segment resizes)");
        }
        if (newSize % unit != 0) {
            throw new IllegalArgumentException("LUKS2 with " + unit + "-byte sectors resizes in whole sectors, not to "
                    + newSize + " bytes");
        }
        storage.resize(offset + newSize, preallocation);
        size = newSize;
    }

    @Override
    public void flush() throws IOException {
        storage.flush();
    }

    @Override
    public void sync() throws IOException {
        storage.sync();
    }

    @Override
    public Map<String, Object> formatSpecific() {
        return Luks2Info.of(header);
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
        return "Luks2Instance[" + resource + ", " + header + (key == null ? ", locked" : "") + "]";
    }
}
