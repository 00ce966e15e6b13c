package imago.luks.internal;

import imago.api.spi.SectorEncryption;
import imago.api.spi.Storage;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * An embedded LUKS1 header, opened: its info and, with the master key, the payload cipher over 512-byte sectors.
 * Ciphers are not thread-safe, so each call borrows one from a pool.
 */
final class LuksSectorEncryption implements SectorEncryption {
    private final Storage region;
    /** Replaced when the key slots are amended. */
    private volatile LuksHeader header;
    private final long maxIterations;
    private final byte[] key;
    private final CipherPool ciphers;
    private volatile boolean closed;

    /** @param key the master key, which this now owns and wipes on close; {@code null} if locked */
    LuksSectorEncryption(Storage region, LuksHeader header, byte[] key, long maxIterations) {
        this.region = region;
        this.header = header;
        this.key = key;
        this.maxIterations = maxIterations;
        LuksCipherSpec spec = header.spec();
        this.ciphers = new CipherPool(() -> spec.cipher(key));
    }

    @Override
    public Optional<KeySlotEditor> keySlots() {
        if (!unlocked()) {
            return Optional.empty();
        }
        return Optional.of((options, secrets, force) -> header = LuksKeySlotAmend.amend(region, header, key, options,
                "encrypt.", secrets, force, maxIterations));
    }

    @Override
    public int sectorSize() {
        return LuksHeader.SECTOR;
    }

    @Override
    public boolean unlocked() {
        return key != null && !closed;
    }

    @Override
    public void encrypt(byte[] buf, int off, int len, long firstSector) {
        crypt(buf, off, len, firstSector, true);
    }

    @Override
    public void decrypt(byte[] buf, int off, int len, long firstSector) {
        crypt(buf, off, len, firstSector, false);
    }

    /** {@inheritDoc} Here a direct buffer goes through the cipher's own cache-sized batch array. */
    @Override
    public void decrypt(ByteBuffer buf, long firstSector) {
        requireUnlocked();
        ciphers.decrypt(buf, firstSector);
    }

    private void requireUnlocked() {
        if (!unlocked()) {
            throw new IllegalStateException(region.name() + ": the LUKS header is not unlocked");
        }
    }

    private void crypt(byte[] buf, int off, int len, long firstSector, boolean encrypt) {
        requireUnlocked();
        if (encrypt) {
            ciphers.encrypt(buf, off, len, firstSector);
        } else {
            ciphers.decrypt(buf, off, len, firstSector);
        }
    }

    /** qemu-img's {@code QCryptoBlockInfo} of an embedded header: the format, then the LUKS fields. */
    @Override
    public Map<String, Object> info() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("format", "luks");
        m.putAll(LuksInstance.info(header));
        return m;
    }

    @Override
    public void close() {
        closed = true;
        if (key != null) {
            Arrays.fill(key, (byte) 0);
        }
        ciphers.clear();
    }

    @Override
    public String toString() {
        return "LuksSectorEncryption[" + region.name() + ", " + header + (unlocked() ? "" : ", locked") + "]";
    }
}
