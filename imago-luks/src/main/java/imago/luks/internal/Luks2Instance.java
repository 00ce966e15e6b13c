package imago.luks.internal;

import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.Preallocation;
import imago.api.Secrets;
import imago.api.spi.Amender;
import imago.api.spi.BackingReader;
import imago.api.spi.Storage;
import java.io.IOException;
import java.util.Map;
import java.util.function.DoubleConsumer;

/**
 * One open LUKS2 container: the guest bytes are the data segment, encrypted in units of the segment's sector size
 * (512 to 4096 bytes), each unit's IV its number counted in that unit from the segment's start plus the segment's
 * {@code iv_tweak} (as cryptsetup maps LUKS2, with dm-crypt's large-sector IVs), read and written by an
 * {@link EncryptedPayload}. A {@code dynamic} segment runs to the end of the file, in whole sectors. Without a key
 * only {@code info} works.
 */
final class Luks2Instance extends AbstractLuksInstance implements Amender {
    /** Replaced when {@code amend} changes the key slots (the data segment stays as it is). */
    private volatile Luks2Header header;
    /** The secrets and KDF limits of the open, for {@code amend}'s new-secret and old-secret. */
    private Secrets secrets = Secrets.none();
    private Luks2Keys.Limits limits;

    /** @param key the volume key, which the instance now owns and wipes on close; {@code null} if locked */
    Luks2Instance(Storage storage, Luks2Header header, byte[] key, boolean writable) throws IOException {
        Luks2Metadata.Segment s = header.metadata().segment();
        int unit = s.sectorSize();
        long available = (storage.size() - s.offset()) / unit * unit;
        if (s.size() >= 0 && s.size() > available) {
            throw new CorruptImageException(storage.name(), s.offset(), "LUKS2 data segment of " + s.size()
                    + " bytes at " + s.offset() + " ends past the end of the file (" + storage.size() + " bytes)");
        }
        LuksCipherSpec spec = header.segmentCipher();
        super(storage, key, new EncryptedPayload(storage, s.offset(), unit, s.ivTweak(),
                key == null ? null : new CipherPool(() -> spec.cipher(key, unit)), writable,
                s.size() >= 0 ? s.size() : available));
        this.header = header;
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
    public void resize(long newSize, Preallocation preallocation, BackingReader below) throws IOException {
        requireWritable(newSize);
        long fixed = header.metadata().segment().size();
        if (fixed >= 0) {
            throw new ImageException(storage.name(), "LUKS2 data segment has a fixed size of " + fixed
                    + " bytes (only a dynamic segment resizes)");
        }
        int unit = header.metadata().segment().sectorSize();
        if (newSize % unit != 0) {
            throw new IllegalArgumentException("LUKS2 with " + unit + "-byte sectors resizes in whole sectors, not to "
                    + newSize + " bytes");
        }
        storage.resize(payload.start() + newSize, preallocation);
        payload.resized(newSize);
    }

    @Override
    public Map<String, Object> formatSpecific() {
        return Luks2Info.of(header);
    }

    @Override
    Luks2Header header() {
        return header;
    }
}
