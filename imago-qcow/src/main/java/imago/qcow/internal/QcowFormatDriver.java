package imago.qcow.internal;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Confidence;
import imago.api.spi.CreateChecks;
import imago.api.spi.Dependency;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Objects;
import java.util.Optional;
import java.util.SequencedMap;

/**
 * The qcow driver: QEMU's original copy-on-write format (version 1), under qemu-img's format name. Stateless.
 * Images name a backing file but not its format, so it is probed (if the gate allows). AES-encrypted images are
 * refused; there are no create options but {@code backing_file} (and {@code backing_fmt}, which qemu-img demands
 * and qcow cannot record).
 */
public final class QcowFormatDriver implements FormatDriver {
    /** QEMU refuses longer backing file names. */
    static final int MAX_BACKING_NAME = 1023;
    /**
     * imago's refusal of a size whose L1 table passes {@link QcowHeader#MAX_L1_BYTES}: 8 TiB (each entry maps 2 MiB).
     * qemu-img 7.2 creates qcow images up to 512 TiB, and larger ones that it cannot open (its L1 size wraps).
     */
    static final String TOO_LARGE = "Image size too large for qcow (at most 8 TiB: imago's limit on the L1 table)";

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public QcowFormatDriver() {
    }

    @Override
    public String name() {
        return "qcow";
    }

    @Override
    public int probeLength() {
        return 8;
    }

    /** {@link Confidence#STRONG} for the magic "QFI\xfb" and version 1 (QEMU's probe). */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return head.remaining() >= 8 && head.getInt(head.position()) == QcowHeader.MAGIC
                && head.getInt(head.position() + 4) == QcowHeader.VERSION ? Confidence.STRONG : Confidence.NONE;
    }

    /**
     * Opens a qcow image.
     *
     * @throws CorruptImageException if the header is invalid (QEMU's messages) or a table lies outside the file
     * @throws imago.api.UnsupportedFeatureException if the version is not 1 or the image is encrypted
     * @throws imago.api.ImageLimitException if the L1 table is larger than 32 MiB
     * @throws ReadOnlyImageException if writing is asked of a read-only storage
     * @throws IOException if the storage cannot be read
     */
    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        if (context.writable() && storage.readOnly()) {
            throw new ReadOnlyImageException(storage.name(), "cannot open a read-only storage for writing");
        }
        ByteBuffer head = ByteBuffer.allocate(QcowHeader.LENGTH);
        storage.read(head, 0);
        QcowHeader header = QcowHeader.parse(head.flip(), storage.name());
        Optional<Dependency.BackingFile> backing = Optional.empty();
        if (header.backingNameOffset() != 0) {
            String file = backingName(storage, header);
            if (!file.isEmpty()) {
                backing = Optional.of(new Dependency.BackingFile(file, Optional.empty()));
            }
        }
        return new QcowInstance(storage, header, context.writable(), backing, storage.size());
    }

    private static String backingName(Storage storage, QcowHeader header) throws IOException {
        int size = header.backingNameSize();
        if (size < 0 || size > MAX_BACKING_NAME) {
            throw new CorruptImageException(storage.name(), 16, "Backing file name too long");
        }
        long at = header.backingNameOffset();
        if (at < 0 || at > storage.size() - size) {
            throw new CorruptImageException(storage.name(), 8, "the backing file name (" + size + " bytes at offset "
                    + Long.toUnsignedString(at) + ") lies outside the file");
        }
        ByteBuffer b = ByteBuffer.allocate(size);
        storage.read(b, at);
        int end = 0;
        while (end < size && b.get(end) != 0) {
            end++;
        }
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(b.flip().limit(end)).toString();
        } catch (CharacterCodingException e) {
            throw new CorruptImageException(storage.name(), at, "backing file name is not UTF-8");
        }
    }

    /** qemu-img's order: the size, the backing file and its format, the encryption options, the preallocation. */
    @Override
    public SequencedMap<String, String> formattingOptions(CreateOptions options, String preallocation) {
        SequencedMap<String, String> out = new LinkedHashMap<>();
        options.size().ifPresent(s -> out.put("size", Long.toString(s)));
        options.backingFile().ifPresent(b -> out.put("backing_file", b));
        options.backingFormat().ifPresent(f -> out.put("backing_fmt", f));
        for (String key : QcowCreateEncryption.OPTIONS) {
            String value = options.formatOptions().get(key);
            if (value != null) {
                out.put(key, value);
            }
        }
        if (preallocation != null) {
            out.put("preallocation", preallocation);
        }
        return out;
    }

    /** {@inheritDoc} qemu-img refuses {@code encryption} and {@code encrypt.format} together before making the file. */
    @Override
    public void checkCreate(StorageLocation location, CreateOptions options) {
        QcowCreateEncryption.checkAlias(options);
    }

    /**
     * Writes a new qcow image as qemu-img 7.2 does: the header, the backing file name after it, then an empty L1
     * table from the next multiple of 8, written in whole sectors; 4 KiB clusters and 512-entry L2 tables, or with a
     * backing file 512-byte clusters (so that no write copies from the backing file) and 4096-entry tables.
     *
     * @throws IllegalArgumentException if no size is given, the size is under 2 bytes, an option is unknown or
     *         invalid (qemu-img's messages), or
     *         preallocation is metadata (falloc and full are accepted and make the same
     *         file as off, as in qemu-img)
     * @throws UnsupportedFeatureException for AES-CBC encryption
     * @throws IOException if the storage cannot be written
     */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(options, "options");
        for (String key : options.formatOptions().keySet()) {
            if (!QcowCreateEncryption.OPTIONS.contains(key)) {
                throw new IllegalArgumentException("Invalid parameter '" + key + "' for format qcow");
            }
        }
        CreateChecks.fileLayerPreallocation(options);
        QcowCreateEncryption.check(storage.name(), options);
        long requested = options.size().orElseThrow(() -> new IllegalArgumentException(
                "Image creation needs a size parameter"));
        long size = requested + 511 & -512L;
        // qemu-img rounds up to a sector first, so only 0 is too small here (the header check refuses 1)
        if (requested <= 0) {
            throw new IllegalArgumentException("Image size is too small, cannot be zero length");
        }
        if (size < 0) { // wrapped when rounded up
            throw new IllegalArgumentException(TOO_LARGE);
        }
        byte[] name = options.backingFile().map(b -> b.getBytes(StandardCharsets.UTF_8)).orElse(new byte[0]);
        boolean backed = options.backingFile().isPresent();
        if (name.length > MAX_BACKING_NAME) {
            throw new IllegalArgumentException("Backing file name too long");
        }
        int clusterBits = backed ? 9 : 12;
        int l2Bits = backed ? 12 : 9;
        long l1At = (QcowHeader.LENGTH + name.length + 7) & -8L;
        QcowHeader header = new QcowHeader(backed ? QcowHeader.LENGTH : 0, name.length, 0, size, clusterBits, l2Bits,
                0, l1At);
        if (header.l1Entries() * 8 > QcowHeader.MAX_L1_BYTES) {
            throw new IllegalArgumentException(TOO_LARGE);
        }
        storage.write(header.toBytes(), 0);
        if (backed) {
            storage.write(ByteBuffer.wrap(name), QcowHeader.LENGTH);
        }
        long l1Bytes = (header.l1Entries() * 8 + 511) & -512L;
        storage.writeZeroes(l1At, l1Bytes, false);
        if (storage.size() < l1At + l1Bytes) {
            storage.write(ByteBuffer.allocate(1), l1At + l1Bytes - 1);
        }
    }

    @Override
    public boolean supportsBacking() {
        return true;
    }
}
