package imago.qed.internal;

import imago.api.spi.Storage;
import java.io.IOException;

/**
 * The header of an open QED image as it changes, each change written to the header at offset 0: the need-check bit,
 * set (and synced) before the first allocation and cleared (after a sync, and synced) when the image is clean again,
 * as QEMU does; the size a resize grows to; the backing file name a rebase rewrites. Readers see the last header
 * written; writers hold the instance's lock.
 */
final class QedHeaderState {
    private final Storage storage;
    private volatile QedHeader header;

    QedHeaderState(Storage storage, QedHeader header) {
        this.storage = storage;
        this.header = header;
    }

    QedHeader get() {
        return header;
    }

    /** Sets the need-check bit and syncs it, unless it is set. */
    void markNeedCheck() throws IOException {
        if (!header.needsCheck()) {
            write(header.withFeatures(header.features() | QedHeader.NEED_CHECK), true);
        }
    }

    /** Syncs what came before, then clears the need-check bit, synced too. */
    void clearNeedCheck() throws IOException {
        storage.sync();
        write(header.withFeatures(header.features() & ~QedHeader.NEED_CHECK), true);
    }

    /** Writes the header with the image size {@code newSize}. */
    void resize(long newSize) throws IOException {
        write(header.withImageSize(newSize), false);
    }

    /** Rewrites the backing file name and format, as {@link QedBackingName#rewrite} does. */
    void changeBackingFile(String file, String format) throws IOException {
        header = QedBackingName.rewrite(storage, header, file, format);
    }

    /** Writes {@code h} (and with {@code sync}, syncs it); only then do readers see it. */
    private void write(QedHeader h, boolean sync) throws IOException {
        storage.write(h.toBytes(), 0);
        if (sync) {
            storage.sync();
        }
        header = h;
    }
}
