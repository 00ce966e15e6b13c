package imago.luks.internal;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.Measurement;
import imago.api.StorageLocation;
import imago.api.spi.Confidence;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.Set;

/**
 * The {@code luks} format: a LUKS1 container whose payload is the guest disk, unlocked by the passphrase in the
 * secret that the open option {@value #KEY_SECRET} names (qemu's {@code key-secret=ID}). Without that option a
 * read-only open shows the header (as {@code qemu-img info} does) and refuses I/O.
 */
public final class LuksFormatDriver implements FormatDriver {
    /** The open and create option naming the secret that holds the passphrase. */
    static final String KEY_SECRET = "key-secret";

    /** For {@link java.util.ServiceLoader}. */
    public LuksFormatDriver() {
    }

    @Override
    public String name() {
        return "luks";
    }

    /** Sectors never written decrypt to noise, as in QEMU (whose luks driver has no zero init either). */
    @Override
    public boolean createsZeroedImages() {
        return false;
    }

    @Override
    public int probeLength() {
        return LuksHeader.MAGIC.length;
    }

    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return LuksHeader.hasMagic(head) ? Confidence.STRONG : Confidence.NONE;
    }

    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        String resource = storage.name();
        long fileSize = storage.size();
        ByteBuffer b = ByteBuffer.allocate((int) Math.min(LuksHeader.LENGTH, fileSize));
        storage.read(b, 0);
        ByteBuffer head = b.duplicate().flip();
        if (head.limit() >= 8 && LuksHeader.hasMagic(head) && head.getShort(LuksHeader.VERSION_OFFSET) == 2) {
            return Luks2Open.open(storage, context);
        }
        LuksHeader header = LuksHeader.parse(resource, b.flip(), fileSize);
        String id = context.options().get(KEY_SECRET);
        if (id == null) {
            // as QEMU: without a key only a metadata-only open (qemu-img info's BDRV_O_NO_IO) succeeds, showing
            // the header; any other open fails here rather than at the first read or map
            if (context.writable() || !context.metadataOnly()) {
                throw new ImageException(resource, "Parameter 'key-secret' is required for cipher");
            }
            return new LuksInstance(storage, header, null, false);
        }
        long maxIterations = LuksKeys.maxIterations(resource, context.options());
        byte[] passphrase = context.secrets().get(id).orElseThrow(() -> new ImageException(resource,
                "No secret with id '" + id + "'"));
        byte[] key;
        try {
            key = LuksKeys.unlock(resource, storage, header, passphrase, maxIterations);
        } finally {
            Arrays.fill(passphrase, (byte) 0);
        }
        return new LuksInstance(storage, header, key, context.writable()).forAmend(context.secrets(), maxIterations);
    }

    /** {@inheritDoc} qemu-img refuses every luks option before it makes the file. */
    @Override
    public void checkCreate(StorageLocation location, CreateOptions options) {
        if (Luks2Create.wanted(options.formatOptions())) {
            Luks2Create.check(options);
        } else {
            LuksCreate.check(Luks2Create.withoutVersion(options));
        }
    }

    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        if (Luks2Create.wanted(options.formatOptions())) {
            Luks2Create.create(storage, options);
            return;
        }
        LuksCreate.create(storage, Luks2Create.withoutVersion(options));
    }

    @Override
    public Optional<Measurement> measure(CreateOptions options, Image source) throws IOException {
        options = Luks2Create.without(options, "preallocation"); // as qemu-img's luks measure, which does not read it
        long size = source != null ? source.size() : options.size().orElseThrow(() ->
                new IllegalArgumentException("Either --size N or one filename must be specified."));
        return Optional.of(Luks2Create.wanted(options.formatOptions()) ? Luks2Create.measure(options, size)
                : LuksCreate.measure(Luks2Create.withoutVersion(options), size));
    }

    /** The secret's id, and imago's limits on the work a key slot may ask for. */
    @Override
    public Set<String> openOptionNames() {
        return Set.of(KEY_SECRET, LuksKeys.MAX_ITERATIONS_OPTION, Luks2Keys.MAX_MEMORY_OPTION,
                Luks2Keys.MAX_WORK_OPTION);
    }

    @Override
    public Set<String> createOptionNames() {
        return Luks2Create.names();
    }

    /** qemu-img's order: the size, its luks options as given, imago's LUKS2 ones, then the preallocation. */
    @Override
    public SequencedMap<String, String> formattingOptions(CreateOptions options, String preallocation) {
        SequencedMap<String, String> out = new LinkedHashMap<>();
        options.size().ifPresent(s -> out.put("size", Long.toString(s)));
        for (String name : Luks2Create.OPTIONS) {
            String v = options.formatOptions().get(name);
            if (v != null) {
                out.put(name, v);
            }
        }
        if (preallocation != null) {
            out.put("preallocation", preallocation);
        }
        return out;
    }
}
