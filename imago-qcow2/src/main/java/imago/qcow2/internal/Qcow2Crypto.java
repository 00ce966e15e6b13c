package imago.qcow2.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageException;
import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.EncryptionFormat;
import imago.api.spi.OpenContext;
import imago.api.spi.SectorEncryption;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * qcow2's {@code encrypt.format=luks} (crypt_method 2): the LUKS header in the clusters the crypto header extension
 * names, parsed and unlocked by the {@link EncryptionFormat} named {@code luks} that {@link ServiceLoader} finds (the
 * module {@code imago.luks}), so that this module needs none unless an image is encrypted. Data clusters are
 * encrypted in 512-byte sectors whose IV is the sector's <em>host</em> offset divided by 512, as QEMU numbers them
 * for LUKS ({@code crypt_physical_offset}): a cluster's bytes cannot move in the file without being re-encrypted.
 */
final class Qcow2Crypto implements AutoCloseable {
    /** The open option naming the secret that holds the passphrase (QEMU's {@code encrypt.key-secret}). */
    static final String KEY_SECRET = "encrypt.key-secret";
    /** The create options' prefix for the encryption format's own options. */
    static final String PREFIX = "encrypt.";
    static final int SECTOR = 512;

    private final String resource;
    private final SectorEncryption encryption;
    /** The secrets of the open, for amend's {@code encrypt.new-secret} and {@code encrypt.old-secret}. */
    private final imago.api.Secrets secrets;

    private Qcow2Crypto(String resource, SectorEncryption encryption, imago.api.Secrets secrets) {
        this.resource = resource;
        this.encryption = encryption;
        this.secrets = secrets;
    }

    /**
     * The encryption format called {@code name} among the installed ones.
     *
     * @throws UnsupportedFeatureException if no module provides it
     */
    static EncryptionFormat format(String resource, String name) throws UnsupportedFeatureException {
        Module m = Qcow2Crypto.class.getModule();
        ServiceLoader<EncryptionFormat> loader = m.getLayer() != null
                ? ServiceLoader.load(m.getLayer(), EncryptionFormat.class)
                : ServiceLoader.load(EncryptionFormat.class, Qcow2Crypto.class.getClassLoader());
        for (EncryptionFormat f : loader) {
            if (f.name().equals(name)) {
                return f;
            }
        }
        throw new UnsupportedFeatureException(resource, Feature.ENCRYPTION, name + " encryption",
                "the image is encrypted with " + name + ", and no module providing it (imago.luks) is installed");
    }

    /**
     * Opens the LUKS header of an image whose header says crypt_method 2, unlocked with the passphrase of the
     * secret that {@value #KEY_SECRET} names; without that option a read-only open shows the header only.
     *
     * @throws ImageException if the option is missing on a writable open, names no secret, or the passphrase
     *         unlocks no key slot
     */
    static Qcow2Crypto open(Storage storage, Qcow2Header header, long fileSize, OpenContext context)
            throws IOException {
        String resource = storage.name();
        long[] region = header.cryptoRegion().orElseThrow(() -> new CorruptImageException(resource, 32,
                "LUKS encryption method without a crypto header extension"));
        if (region[1] <= 0 || region[0] <= 0 || region[0] + region[1] < 0 || region[0] + region[1] > fileSize) {
            throw new CorruptImageException(resource, 32, "the LUKS header (offset " + region[0] + ", length "
                    + region[1] + ") lies outside the file (" + fileSize + " bytes)");
        }
        EncryptionFormat format = format(resource, "luks");
        Storage slice = new Region(storage, region[0], region[1]);
        String id = context.options().get(KEY_SECRET);
        if (id == null) {
            if (context.writable() && !context.forCheck()) {
                throw new ImageException(resource, "Parameter '" + KEY_SECRET + "' is required for cipher");
            }
            return new Qcow2Crypto(resource, format.open(slice, null, context.options()), context.secrets());
        }
        byte[] passphrase = context.secrets().get(id).orElseThrow(() -> new ImageException(resource,
                "No secret with id '" + id + "'"));
        try {
            return new Qcow2Crypto(resource, format.open(slice, passphrase, context.options()), context.secrets());
        } finally {
            Arrays.fill(passphrase, (byte) 0);
        }
    }

    /**
     * Writes a new LUKS header for the {@code encrypt.*} options into {@code [offset, offset + length)} of
     * {@code storage}, which {@link #headerLength} sized.
     */
    static void create(Storage storage, long offset, long length, Map<String, String> options,
            imago.api.Secrets secrets) throws IOException {
        EncryptionFormat format = format(storage.name(), "luks");
        try (SectorEncryption e = format.create(new Region(storage, offset, length), options, secrets)) {
            if (!e.unlocked()) {
                throw new IllegalStateException("a new LUKS header is not unlocked");
            }
        }
    }

    /** Whether a key is present (else the header is shown, no data read or written). */
    boolean unlocked() {
        return encryption.unlocked();
    }

    /** Refuses guest data access without a key, with QEMU's words. */
    void requireKey() throws ImageException {
        if (!encryption.unlocked()) {
            throw new ImageException(resource, "Parameter '" + KEY_SECRET + "' is required for cipher");
        }
    }

    /**
     * Changes the LUKS key slots as {@code qemu-img amend -o encrypt.state=...} does ({@code options} without the
     * prefix).
     */
    void amendKeySlots(Map<String, String> options, boolean force) throws IOException {
        requireKey();
        SectorEncryption.KeySlotEditor editor = encryption.keySlots().orElseThrow(() ->
                new UnsupportedFeatureException(resource, Feature.AMEND, "the encryption format cannot amend its "
                        + "key slots"));
        editor.amend(options, secrets, force);
    }

    /** What {@code info} shows as qcow2's {@code encrypt}. */
    Map<String, Object> info() {
        return encryption.info();
    }

    /**
     * Reads {@code dst.remaining()} guest bytes stored from host offset {@code host} of {@code data}, decrypting
     * the whole sectors they lie in: whole sectors (what convert and aligned guest reads ask for) are read into
     * {@code dst} and decrypted there, direct or not; a read that starts or ends inside a sector goes through an
     * array of the sectors it touches.
     */
    void read(Storage data, ByteBuffer dst, long host) throws IOException {
        requireKey();
        int n = dst.remaining();
        if (host % SECTOR == 0 && n % SECTOR == 0) {
            int at = dst.position();
            data.read(dst.slice(at, n), host);
            encryption.decrypt(dst.slice(at, n), host / SECTOR);
            dst.position(at + n);
            return;
        }
        long first = host / SECTOR;
        int within = (int) (host % SECTOR);
        int span = (within + dst.remaining() + SECTOR - 1) / SECTOR * SECTOR;
        byte[] buf = new byte[span];
        data.read(ByteBuffer.wrap(buf), first * SECTOR);
        encryption.decrypt(buf, 0, span, first);
        dst.put(buf, within, dst.remaining());
    }

    /** Encrypts {@code src} (whole sectors) and writes it at host offset {@code host} (sector-aligned) of {@code data}. */
    void write(Storage data, ByteBuffer src, long host) throws IOException {
        requireKey();
        int n = src.remaining();
        if (host % SECTOR != 0 || n % SECTOR != 0) {
            throw new IllegalStateException(resource + ": an encrypted write must cover whole sectors, not " + n
                    + " bytes at host offset " + host);
        }
        byte[] buf = new byte[n];
        src.get(buf);
        encryption.encrypt(buf, 0, n, host / SECTOR);
        data.write(ByteBuffer.wrap(buf), host);
    }

    @Override
    public void close() {
        encryption.close();
    }

    /** The LUKS header's clusters as a storage of their own, which the encryption format reads and writes. */
    private record Region(Storage file, long offset, long length) implements Storage {
        @Override
        public String name() {
            return file.name();
        }

        @Override
        public StorageLocation location() {
            return file.location();
        }

        @Override
        public long size() {
            return length;
        }

        @Override
        public boolean readOnly() {
            return file.readOnly();
        }

        private void check(long at, int n) throws CorruptImageException {
            if (at < 0 || at + n > length) {
                throw new CorruptImageException(file.name(), offset + at, "Request for data outside of extension "
                        + "header (" + n + " bytes at " + at + " of " + length + ")");
            }
        }

        @Override
        public void read(ByteBuffer dst, long at) throws IOException {
            check(at, dst.remaining());
            file.read(dst, offset + at);
        }

        @Override
        public void write(ByteBuffer src, long at) throws IOException {
            check(at, src.remaining());
            file.write(src, offset + at);
        }

        @Override
        public void flush() throws IOException {
            file.flush();
        }

        @Override
        public void sync() throws IOException {
            file.sync();
        }

        @Override
        public void resize(long size, Preallocation preallocation) {
            throw new UnsupportedOperationException("the LUKS header region of a qcow2 image has a fixed size");
        }

        @Override
        public Optional<StorageLocation> resolve(String storedName) {
            return Optional.empty();
        }

        /** The file belongs to the image, which closes it. */
        @Override
        public void close() {
        }
    }
}
