package imago.luks.internal;

import imago.api.Preallocation;
import imago.api.Secrets;
import imago.api.spi.Amender;
import imago.api.spi.BackingReader;
import imago.api.spi.Storage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleConsumer;

/**
 * One open LUKS1 container: the guest bytes are the payload, encrypted in 512-byte sectors numbered from the
 * payload's start ({@link EncryptedPayload}); this keeps the header, its {@code info}, resizing and key-slot amends.
 * Without a key (opened for {@code info} without a secret) the header can be shown but no guest byte read or written.
 */
final class LuksInstance extends AbstractLuksInstance implements Amender {
    /** Replaced when {@code amend} changes a key slot. */
    private volatile LuksHeader header;
    /** The secrets the image was opened with, for {@code amend}'s new-secret and old-secret. */
    private Secrets secrets = Secrets.none();
    private long maxIterations = LuksKeys.DEFAULT_MAX_ITERATIONS;

    /** @param key the master key, which the instance now owns and wipes on close; {@code null} if locked */
    LuksInstance(Storage storage, LuksHeader header, byte[] key, boolean writable) throws IOException {
        long start = header.payloadSector() * LuksHeader.SECTOR;
        LuksCipherSpec spec = header.spec();
        // QEMU's block layer counts the file in whole sectors: a 1000-byte payload is a 1024-byte disk
        super(storage, key, new EncryptedPayload(storage, start, LuksHeader.SECTOR, 0,
                key == null ? null : new CipherPool(() -> spec.cipher(key)), writable,
                EncryptedPayload.roundUp(storage.size(), LuksHeader.SECTOR) - start));
        this.header = header;
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

    @Override
    public void resize(long newSize, Preallocation preallocation, BackingReader below) throws IOException {
        requireWritable(newSize);
        // the file keeps whole sectors: cut inside the new last one, its ciphertext would be short and the bytes below
        // the new end in it would decrypt to noise (QEMU's luks driver cuts there and loses them)
        long sectors = EncryptedPayload.roundUp(newSize, LuksHeader.SECTOR);
        storage.resize(payload.start() + sectors, preallocation);
        payload.resized(sectors);
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
    LuksHeader header() {
        return header;
    }
}
