package imago.qed.internal;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.ImageLimitException;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.api.spi.Confidence;
import imago.api.spi.Dependency;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Objects;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.Set;

/**
 * The qed driver: QEMU Enhanced Disk images, under qemu-img's format name. Stateless. Create options ({@code -o}):
 * {@code cluster_size} (default 64 KiB) and {@code table_size} (clusters per table, default 4), besides
 * {@code backing_file} and {@code backing_fmt} (recorded only as "raw, do not probe").
 */
public final class QedFormatDriver implements FormatDriver {
    /** A table larger than this is refused (QEMU allows 1 GiB tables, which no one makes). */
    static final long MAX_TABLE_BYTES = 64L << 20;
    /** QEMU reads at most this many bytes of backing file name (its PATH_MAX buffer, with the terminator). */
    static final int MAX_BACKING_NAME = 4095;

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public QedFormatDriver() {
    }

    @Override
    public String name() {
        return "qed";
    }

    @Override
    public int probeLength() {
        return 4;
    }

    /** {@link Confidence#STRONG} for the magic "QED\0" at offset 0 (QEMU's probe). */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return head.remaining() >= 4 && head.duplicate().order(ByteOrder.LITTLE_ENDIAN).getInt(head.position())
                == QedHeader.MAGIC ? Confidence.STRONG : Confidence.NONE;
    }

    /**
     * Opens a QED image; a writable open of an image marked need-check runs the repairing check first, as QEMU does.
     *
     * @throws CorruptImageException if the header is invalid (QEMU's messages) or a table lies outside the file
     * @throws imago.api.UnsupportedFeatureException if an unknown feature bit is set
     * @throws ImageLimitException if a table is larger than 64 MiB
     * @throws ReadOnlyImageException if writing is asked of a read-only storage
     * @throws IOException if the storage cannot be read
     */
    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        String name = storage.name();
        if (context.writable() && storage.readOnly()) {
            throw new ReadOnlyImageException(name, "cannot open a read-only storage for writing");
        }
        ByteBuffer head = ByteBuffer.allocate(QedHeader.LENGTH);
        storage.read(head, 0);
        long length = storage.size();
        QedHeader header = QedHeader.parse(head.flip(), length, name);
        if (header.tableBytes() > MAX_TABLE_BYTES) {
            throw new ImageLimitException(name, 8, "QED tables of " + header.tableBytes() + " bytes exceed imago's "
                    + "limit of " + MAX_TABLE_BYTES);
        }
        Optional<Dependency.BackingFile> backing = Optional.empty();
        if (header.hasBacking()) {
            String file = backingName(storage, header);
            if (!file.isEmpty()) {
                backing = Optional.of(new Dependency.BackingFile(file, (header.features() & QedHeader.NO_PROBE) != 0
                        ? Optional.of("raw") : Optional.empty()));
            }
        }
        if (context.writable() && header.autoclearFeatures() != 0) {
            // no autoclear bit is known: knock them all out, as an older QEMU does
            header = header.withAutoclear(0);
            storage.write(header.toBytes(), 0);
            storage.sync();
        }
        QedInstance instance = new QedInstance(storage, header, context.writable(), backing, length);
        if (context.writable() && header.needsCheck() && !context.forCheck()) {
            instance.check(Repair.ALL);
        }
        return instance;
    }

    private static String backingName(Storage storage, QedHeader header) throws IOException {
        int size = header.backingNameSize();
        if (size < 0 || size > MAX_BACKING_NAME) {
            throw new CorruptImageException(storage.name(), 60, "Failed to read backing filename (" 
                    + Integer.toUnsignedString(size) + " bytes)");
        }
        ByteBuffer b = ByteBuffer.allocate(size);
        storage.read(b, Integer.toUnsignedLong(header.backingNameOffset()));
        int end = 0;
        while (end < size && b.get(end) != 0) {
            end++;
        }
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(b.flip().limit(end)).toString();
        } catch (CharacterCodingException e) {
            throw new CorruptImageException(storage.name(), Integer.toUnsignedLong(header.backingNameOffset()),
                    "backing file name is not UTF-8");
        }
    }

    /**
     * Writes a new QED image as qemu-img 7.2 does (see {@link QedCreate}).
     *
     * @throws IllegalArgumentException if no size is given, an option is unknown or invalid, or preallocation is
     *         metadata (falloc and full are accepted and make the same
     *         file as off, as in qemu-img)
     * @throws IOException if the storage cannot be written
     */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        Objects.requireNonNull(storage, "storage");
        QedCreate.create(storage, Objects.requireNonNull(options, "options"));
    }

    @Override
    public Set<String> createOptionNames() {
        return Set.of(QedCreate.CLUSTER_SIZE, QedCreate.TABLE_SIZE);
    }

    @Override
    public boolean supportsBacking() {
        return true;
    }

    /** {@inheritDoc} qemu-img's order for qed: size, backing_file, backing_fmt, cluster_size (always), table_size. */
    @Override
    public SequencedMap<String, String> formattingOptions(CreateOptions options, String preallocation) {
        SequencedMap<String, String> out = new LinkedHashMap<>();
        options.size().ifPresent(s -> out.put("size", Long.toString(s)));
        options.backingFile().ifPresent(b -> out.put("backing_file", b));
        options.backingFormat().ifPresent(f -> out.put("backing_fmt", f));
        // in bytes, as qemu-img prints a size option it has read (cluster_size=4k shows as 4096)
        out.put(QedCreate.CLUSTER_SIZE, bytes(options, QedCreate.CLUSTER_SIZE,
                Integer.toString(QedCreate.DEFAULT_CLUSTER)));
        String table = options.formatOptions().get(QedCreate.TABLE_SIZE);
        if (table != null) {
            out.put(QedCreate.TABLE_SIZE, bytes(options, QedCreate.TABLE_SIZE, table));
        }
        if (preallocation != null) {
            out.put("preallocation", preallocation);
        }
        return out;
    }

    private static String bytes(CreateOptions options, String key, String fallback) {
        String v = options.formatOptions().get(key);
        if (v == null) {
            return fallback;
        }
        try {
            return Long.toString(QedCreate.size(key, v, 0));
        } catch (IllegalArgumentException e) {
            return v; // create refuses it
        }
    }
}
