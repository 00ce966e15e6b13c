package imago.luks.internal;

import imago.api.ImageException;
import imago.api.Secrets;
import imago.api.spi.EncryptionFormat;
import imago.api.spi.SectorEncryption;
import imago.api.spi.Storage;
import imago.luks.crypto.LuksHash;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;

/**
 * LUKS1 headers embedded in other formats (qcow2's {@code encrypt.format=luks}): the header and its key slots fill
 * a region the embedding image reserves, laid out as a {@code luks} container's first bytes without the payload,
 * whose offset the header still records (QEMU's qcow2 reserves exactly that many bytes). The embedding driver
 * numbers the sectors it encrypts itself.
 */
public final class LuksEncryptionFormat implements EncryptionFormat {

    /** For {@link java.util.ServiceLoader}. */
    public LuksEncryptionFormat() {
    }

    @Override
    public String name() {
        return "luks";
    }

    @Override
    public Set<String> createOptionNames() {
        return LuksCreate.names();
    }

    @Override
    public long headerLength(Map<String, String> options) {
        return LuksCreate.payloadSector(spec(options)) * LuksHeader.SECTOR;
    }

    private static LuksCipherSpec spec(Map<String, String> o) {
        for (String name : o.keySet()) {
            if (!LuksCreate.OPTIONS.contains(name)) {
                throw new IllegalArgumentException("Invalid parameter 'encrypt." + name + "'");
            }
        }
        LuksCipherSpec spec = LuksCipherSpec.fromOptions(o.get("cipher-alg"), o.get("cipher-mode"),
                o.get("ivgen-alg"), o.get("ivgen-hash-alg"));
        // checked here too, so that qcow2's create refuses it before it writes anything
        LuksCipherSpec.pbkdfHash(o.get("hash-alg"));
        return spec;
    }

    @Override
    public SectorEncryption create(Storage header, Map<String, String> o, Secrets secrets) throws IOException {
        LuksCipherSpec spec = spec(o);
        LuksHash hash = LuksCipherSpec.pbkdfHash(o.get("hash-alg"));
        long iterTime = LuksCreate.iterTime(o.get("iter-time"));
        String id = o.get("key-secret");
        if (id == null) {
            throw new IllegalArgumentException("Parameter 'encrypt.key-secret' is required for cipher");
        }
        byte[] passphrase = secrets.get(id).orElseThrow(() -> new IllegalArgumentException(
                "No secret with id '" + id + "'"));
        try {
            byte[] key = LuksCreate.writeHeader(header, spec, hash, iterTime, passphrase);
            return new LuksSectorEncryption(header, read(header), key, LuksKeys.DEFAULT_MAX_ITERATIONS);
        } finally {
            Arrays.fill(passphrase, (byte) 0);
        }
    }

    @Override
    public SectorEncryption open(Storage header, byte[] passphrase, Map<String, String> options) throws IOException {
        LuksHeader h = read(header);
        long limit = LuksKeys.maxIterations(header.name(), options);
        if (passphrase == null) {
            return new LuksSectorEncryption(header, h, null, limit);
        }
        byte[] key = LuksKeys.unlock(header.name(), header, h, passphrase, limit);
        return new LuksSectorEncryption(header, h, key, limit);
    }

    private static LuksHeader read(Storage header) throws IOException {
        long size = header.size();
        if (size < LuksHeader.LENGTH) {
            throw new ImageException(header.name(), "the LUKS header region has " + size + " bytes, fewer than the "
                    + LuksHeader.LENGTH + " of a LUKS1 header");
        }
        ByteBuffer b = ByteBuffer.allocate(LuksHeader.LENGTH);
        header.read(b, 0);
        return LuksHeader.parse(header.name(), b.flip(), size);
    }
}
