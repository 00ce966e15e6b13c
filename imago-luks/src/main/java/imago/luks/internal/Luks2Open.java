package imago.luks.internal;

import imago.api.ImageException;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.util.Arrays;

/**
 * Opening a LUKS2 container: the header, then (with {@code key-secret}) the volume key the passphrase unlocks
 * within the open's KDF limits ({@link Luks2Keys.Limits}). Without a secret a read-only open shows the header.
 */
final class Luks2Open {
    private Luks2Open() {
    }

    static FormatInstance open(Storage storage, OpenContext context) throws IOException {
        String resource = storage.name();
        Luks2Header header = Luks2Header.read(storage);
        String id = context.options().get(LuksFormatDriver.KEY_SECRET);
        if (id == null) {
            // as QEMU: without a key only a metadata-only open (qemu-img info's BDRV_O_NO_IO) succeeds, showing
            // the header; any other open fails here rather than at the first read or map
            if (context.writable() || !context.metadataOnly()) {
                throw new ImageException(resource, "Parameter 'key-secret' is required for cipher");
            }
            return new Luks2Instance(storage, header, null, false);
        }
        Luks2Keys.Limits limits = Luks2Keys.Limits.of(resource, context.options());
        byte[] passphrase = context.secrets().get(id).orElseThrow(() -> new ImageException(resource,
                "No secret with id '" + id + "'"));
        byte[] key;
        try {
            key = Luks2Keys.unlock(resource, storage, header, passphrase, limits);
        } finally {
            Arrays.fill(passphrase, (byte) 0);
        }
        try {
            return new Luks2Instance(storage, header, key, context.writable()).forAmend(context.secrets(), limits);
        } catch (IOException | RuntimeException e) {
            Arrays.fill(key, (byte) 0);
            throw e;
        }
    }
}
