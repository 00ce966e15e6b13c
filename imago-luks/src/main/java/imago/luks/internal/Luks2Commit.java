package imago.luks.internal;

import imago.api.ImageException;
import imago.api.spi.Storage;
import imago.luks.crypto.LuksHash;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;

/**
 * New JSON metadata for a LUKS2 header, checked and ready to write over both copies. A LUKS2 header survives a
 * power loss because it has two copies, each with its own checksum and the same {@code seqid}: {@link #write}
 * gives both the next {@code seqid} and overwrites them one at a time, syncing after each, so that at every moment
 * one copy is whole: the old metadata until the first copy is written, the new one from then on (the higher
 * {@code seqid} wins), whatever a torn write leaves of the copy being written.
 *
 * <p>The copy written first is the one the reader did <em>not</em> take: a damaged copy, or the older of two
 * (a previous update cut short). Overwriting the copy in use first could leave, if that write tears, only the
 * older copy behind — metadata from before the previous update. With two equal copies the secondary goes first.
 * Each copy keeps its salt; a damaged one gets a new salt, as cryptsetup gives a copy it recovers.
 *
 * @param old the header as read, whose copies are replaced
 * @param json the new metadata, already checked as {@link Luks2Header#read} would check it
 */
record Luks2Commit(Luks2Header old, String json) {

    /**
     * Checks {@code root} (the new metadata) as opening the image would, and that it fits the JSON area, before
     * anything is written.
     *
     * @throws IllegalArgumentException if the metadata does not fit the header's JSON area or the JSON reader's
     *     limits
     * @throws IllegalStateException if the metadata is one imago would refuse to read (a defect in the caller)
     */
    static Luks2Commit of(Storage storage, Luks2Header old, Object root) throws IOException {
        String json = Luks2Json.write(root);
        long room = old.hdrSize() - Luks2Header.BINARY_LENGTH;
        int length = json.getBytes(StandardCharsets.UTF_8).length;
        if (length >= room) {
            throw new IllegalArgumentException("The LUKS2 metadata would need " + (length + 1) + " bytes, more than "
                    + "the header's JSON area of " + room + " bytes");
        }
        Object reread;
        try {
            reread = Luks2Json.parse(json);
        } catch (Luks2Json.JsonException e) {
            // only a limit can refuse what the writer wrote: a header at the edge of them gets no more
            throw new IllegalArgumentException("The LUKS2 metadata would be past imago's JSON limits: "
                    + e.getMessage(), e);
        }
        if (!reread.equals(root)) {
            throw new IllegalStateException("the LUKS2 metadata does not read back as written");
        }
        try {
            Luks2Metadata m = Luks2Metadata.read(storage.name(), Luks2Header.BINARY_LENGTH, reread);
            if (m.jsonSize() != room) {
                throw new IllegalStateException("config.json_size changed to " + m.jsonSize());
            }
            Luks2Header.checkLayout(storage.name(), Luks2Header.BINARY_LENGTH, m, old.hdrSize(), storage.size());
        } catch (ImageException e) {
            throw new IllegalStateException("imago made LUKS2 metadata it would not read: " + e.getMessage(), e);
        }
        return new Luks2Commit(old, json);
    }

    /**
     * Writes both copies, the one not in use first, each synced before the next; returns the header as it now is
     * on disk (read back and checked).
     */
    Luks2Header write(Storage storage) throws IOException {
        long hdrSize = old.hdrSize();
        long seqid = old.seqid() + 1;
        LuksHash checksum = LuksHash.named(old.checksumAlg()).orElse(LuksHash.SHA256);
        SecureRandom random = new SecureRandom();
        Luks2Header.OnDisk disk = old.onDisk();
        long[] order = disk.secondaryWon() ? new long[] {0, hdrSize} : new long[] {hdrSize, 0};
        for (long at : order) {
            byte[] salt = at == 0 ? disk.primarySalt() : disk.secondarySalt();
            if (salt == null) {
                salt = new byte[Luks2Header.SALT_LENGTH];
                random.nextBytes(salt);
            }
            byte[] copy = Luks2Header.encode(at, hdrSize, seqid, old.label(), old.subsystem(), old.uuid(), checksum,
                    salt, json);
            storage.write(ByteBuffer.wrap(copy), at);
            storage.flush();
            storage.sync();
        }
        return Luks2Header.read(storage);
    }
}
