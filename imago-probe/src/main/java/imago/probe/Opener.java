package imago.probe;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageLimitException;
import imago.api.OpenDeniedException;
import imago.api.OpenGate;
import imago.api.Preallocation;
import imago.api.Secrets;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroDetectingImage;
import imago.api.spi.Amender;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.DoubleConsumer;

/**
 * Builds an open: which image, which format (or probe), writable or not, which {@link OpenGate} for
 * the files it names, explicit backing and data file overrides, driver options such as cache sizes.
 * Not thread-safe; {@link #open()} may be called more than once.
 */
public final class Opener {
    /** The default limit on backing chain length. */
    public static final int DEFAULT_MAX_CHAIN_DEPTH = 32;
    /** The most extent files one layer may name (VMDK descriptors list a few, split images a few hundred). */
    public static final int MAX_EXTENT_FILES = 4096;

    private final Plugins plugins;
    private StorageLocation location;
    private String format;
    private boolean writable;
    private String readOnlyReason;
    private int writableBacking;
    private OpenGate gate = OpenGate.permissive();
    private boolean noBacking;
    private StorageLocation backingOverride;
    private String backingOverrideFormat;
    private StorageLocation dataFileOverride;
    private final Map<String, String> options = new LinkedHashMap<>();
    private int maxChainDepth = DEFAULT_MAX_CHAIN_DEPTH;
    private boolean directIO;
    private boolean noSync;
    private boolean lock = true;
    private boolean shareRawWrites = true;
    private boolean resizing;
    private Secrets secrets = Secrets.none();
    private Secrets ownSecrets;

    Opener(Plugins plugins) {
        this.plugins = plugins;
    }

    /** The image file to open. @return this opener */
    public Opener path(Path path) {
        this.location = StorageLocation.file(Objects.requireNonNull(path, "path"));
        return this;
    }

    /** The image to open, in any installed storage (e.g. {@code StorageLocation.memory("x")}). @return this opener */
    public Opener location(StorageLocation storageLocation) {
        this.location = Objects.requireNonNull(storageLocation, "storageLocation");
        return this;
    }

    /** Opens with this driver instead of probing. @return this opener */
    public Opener format(String formatName) {
        this.format = Objects.requireNonNull(formatName, "formatName");
        return this;
    }

    /**
     * Opens for writing (default: read-only). Backing files stay read-only unless
     * {@link #writableBacking(int)} says otherwise. @return this opener
     */
    public Opener writable(boolean on) {
        this.writable = on;
        return this;
    }

    /**
     * Refuses an open for writing, whatever {@link #writable} says later, with {@code reason} (the user asked for a
     * read-only image: QEMU's {@code read-only=on} is "Block node is read-only"); {@code null} allows it again.
     * @return this opener
     */
    public Opener refuseWrites(String reason) {
        this.readOnlyReason = reason;
        return this;
    }

    /**
     * Opens the first {@code levels} backing layers below the top writable too (default 0), e.g. to
     * commit the top image into them.
     *
     * @return this opener
     */
    public Opener writableBacking(int levels) {
        if (levels < 0) {
            throw new IllegalArgumentException("negative number of writable backing levels: " + levels);
        }
        this.writableBacking = levels;
        return this;
    }

    /** The policy for files the image names (default: permissive). @return this opener */
    public Opener gate(OpenGate openGate) {
        this.gate = Objects.requireNonNull(openGate, "openGate");
        return this;
    }

    /** Uses this file as the top image's backing file instead of the one it names (not gated). @return this opener */
    public Opener backingFile(Path path, String backingFormat) {
        this.backingOverride = StorageLocation.file(Objects.requireNonNull(path, "path"));
        this.backingOverrideFormat = backingFormat;
        this.noBacking = false;
        return this;
    }

    /** Opens the top image without its backing file: unallocated ranges read as zero. @return this opener */
    public Opener noBacking() {
        this.noBacking = true;
        this.backingOverride = null;
        return this;
    }

    /** Uses this file as the top image's external data file instead of the one it names. @return this opener */
    public Opener dataFile(Path path) {
        this.dataFileOverride = StorageLocation.file(Objects.requireNonNull(path, "path"));
        return this;
    }

    /**
     * A driver option with qemu's name, e.g. {@code l2-cache-size} or {@code cache-size} (bytes), or raw's {@code
     * offset} and {@code size}. {@link #open()} refuses an option the image's format does not take
     * ({@link imago.api.spi.FormatDriver#openOptionNames()}) with an {@link IllegalArgumentException}, as qemu
     * does ("Block format 'raw' does not support the option 'foo'").
     *
     * <p>QEMU's block-layer options are taken for every format, and win over the setters, as QEMU's options win over
     * its flags: {@code cache.direct} ({@link #directIO}) and {@code cache.no-flush} ({@link #noSync}), each also as
     * {@code file.cache.direct} and {@code file.cache.no-flush}, the file's own, which wins over the image's;
     * {@code file.locking} ({@code on}, {@code auto}: as {@link #lock}; {@code off}: the top image's file is not
     * locked, its backing files still are); {@code file.aio} ({@code threads}, {@code io_uring}, and {@code native}
     * with direct I/O only: checked as QEMU checks it, imago's I/O stays as it is); and {@code detect-zeroes}
     * ({@code off}, {@code on}, {@code unmap}: see {@link ZeroDetectingImage}). Their values are checked when the
     * image opens. @return this opener
     */
    public Opener option(String name, String value) {
        options.put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
        return this;
    }

    /**
     * A secret (passphrase) that an option names by {@code id}, as qemu's {@code --object secret,id=ID}: e.g.
     * {@code secret("sec0", passphrase).option("key-secret", "sec0")} for a LUKS image. The opener keeps a copy,
     * which it wipes when {@link #open()} or {@link #amend} returns; the caller may wipe {@code value} at once.
     * @return this opener
     */
    public Opener secret(String id, byte[] value) {
        if (ownSecrets == null) {
            ownSecrets = Secrets.create();
            secrets.ids().forEach(i -> secrets.get(i).ifPresent(v -> {
                ownSecrets.put(i, v);
                java.util.Arrays.fill(v, (byte) 0);
            }));
            secrets = ownSecrets;
        }
        ownSecrets.put(id, value);
        return this;
    }

    /**
     * Looks secrets up in {@code set}, which the caller owns (and closes, wiping them); replaces secrets given
     * before. @return this opener
     */
    public Opener secrets(Secrets set) {
        if (ownSecrets != null) {
            ownSecrets.close();
            ownSecrets = null;
        }
        this.secrets = Objects.requireNonNull(set, "set");
        return this;
    }

    /**
     * Opens an internal snapshot (by id or name) instead of the current state, read-only, for formats
     * that have snapshots. @return this opener
     */
    public Opener snapshot(String idOrName) {
        return option("snapshot", Objects.requireNonNull(idOrName, "idOrName"));
    }

    /** The L2 (mapping table) cache size in bytes, for formats that have one. @return this opener */
    public Opener l2CacheSize(long bytes) {
        return option("l2-cache-size", Long.toString(bytes));
    }

    /** The longest backing chain accepted (default {@value #DEFAULT_MAX_CHAIN_DEPTH}). @return this opener */
    public Opener maxChainDepth(int depth) {
        if (depth < 0) {
            throw new IllegalArgumentException("negative chain depth " + depth);
        }
        this.maxChainDepth = depth;
        return this;
    }

    /** Bypasses the host page cache (O_DIRECT) where the storage supports it. @return this opener */
    public Opener directIO(boolean on) {
        this.directIO = on;
        return this;
    }

    /**
     * Never syncs writable storages to stable media (default off): QEMU's {@code cache.no-flush=on},
     * the {@code unsafe} cache mode of {@code qemu-img convert -t unsafe}. {@link Image#flush()} and
     * {@link Image#close()} still write every cached change to the files (the operating system), so a
     * closed image is complete for every later reader; but nothing waits for stable media, so a host
     * crash or power loss may leave the image torn, in any order of its writes. For scratch images
     * and outputs that are recreated anyway. @return this opener
     */
    public Opener noSync(boolean on) {
        this.noSync = on;
        return this;
    }

    /**
     * Opens for {@link Image#check checking} (and, with {@link #writable}, repairing), as qemu-img check
     * does: the driver opens what it can of a damaged image instead of refusing the damage the check is
     * there to report ({@link OpenContext#CHECK_OPTION}), and backing files are not opened. The image may
     * not be fully readable. @return this opener
     */
    public Opener forCheck(boolean on) {
        if (on) {
            options.put(OpenContext.CHECK_OPTION, "on");
        } else {
            options.remove(OpenContext.CHECK_OPTION);
        }
        return this;
    }

    /**
     * Opens for the image's metadata only ({@link OpenContext#NO_IO_OPTION}), as qemu-img info does: no guest data
     * will be read or written, so a driver may open an image whose data it could not reach (a qcow2 image whose
     * external data file has no name, or is missing: it stays unattached). Reads of such data fail.
     * @return this opener
     */
    public Opener metadataOnly(boolean on) {
        if (on) {
            options.put(OpenContext.NO_IO_OPTION, "on");
        } else {
            options.remove(OpenContext.NO_IO_OPTION);
        }
        return this;
    }

    /** Takes advisory locks (default on): a second writer of one image is refused. @return this opener */
    public Opener lock(boolean on) {
        this.lock = on;
        return this;
    }

    /**
     * Whether a raw image's lock lets other processes write the file meanwhile (default on), as qemu-img and qemu-io
     * share it: QEMU's raw format passes its user's permissions through to the file. Off keeps writers out, as
     * {@code qemu-img convert} keeps them off its sources. Formats with metadata always keep other writers out.
     *
     * @return this opener
     */
    public Opener shareRawWrites(boolean on) {
        this.shareRawWrites = on;
        return this;
    }

    /**
     * Whether this open changes the image's size (default off), as {@code qemu-img resize}: a raw file's lock then
     * claims resizing too, so a holder that keeps resizers out (qemu-nbd) refuses it, as it refuses qemu-img.
     *
     * @return this opener
     */
    public Opener resizing(boolean on) {
        this.resizing = on;
        return this;
    }

    /**
     * Opens the image writable and changes its format options in place, as {@code qemu-img amend} does (qcow2: compat,
     * refcount_bits, lazy_refcounts, data_file, data_file_raw, size), then closes it.
     *
     * @param options option names to values, in the order given
     * @param force whether changes the format refuses unless forced go ahead ({@code --force})
     * @param progress told the fraction done, from 0 to 1
     * @throws UnsupportedFeatureException ({@link Feature#AMEND}) if the format cannot amend options, or another
     *         feature for a change it cannot make to this image
     * @throws IllegalArgumentException for an option the format does not know or a value it cannot take
     * @throws IOException if opening or writing fails
     */
    public void amend(Map<String, String> options, boolean force, DoubleConsumer progress) throws IOException {
        writable(true);
        // The amend reads secrets too (new-secret, old-secret): the opener's own copies are wiped after it, not
        // when the image has opened.
        try (Image image = openKeepingSecrets()) {
            Amender amender = image instanceof LayeredImage l ? l.layer().capability(Amender.class).orElse(null) : null;
            if (amender == null) {
                throw new UnsupportedFeatureException(image.name(), Feature.AMEND, "Format driver '" + image.format()
                        + "' does not support option amendment");
            }
            amender.amend(options, force, progress, size -> image.resize(size, Preallocation.OFF));
        } finally {
            wipeOwnSecrets();
        }
    }

    /**
     * Opens the image and its dependencies.
     *
     * @throws java.nio.file.NoSuchFileException if the image or a file it names does not exist
     * @throws imago.api.UnknownFormatException if the format is not installed or not recognised
     * @throws OpenDeniedException if the gate refuses a file the image names
     * @throws CorruptImageException if the image is damaged or its backing chain loops
     * @throws ImageLimitException if the backing chain is deeper than the limit
     * @throws IOException if anything else fails
     * @throws IllegalArgumentException if an {@link #option option} is one the format does not take, or has a value
     *     it cannot take, or the open is for writing and {@link #refuseWrites} forbids it
     */
    public Image open() throws IOException {
        try {
            Image image = openKeepingSecrets();
            String zeroes = BlockOptions.detectZeroes(options);
            return zeroes.equals("off") ? image : ZeroDetectingImage.of(image, zeroes.equals("unmap"));
        } finally {
            wipeOwnSecrets();
        }
    }

    private Image openKeepingSecrets() throws IOException {
        if (location == null) {
            throw new IllegalStateException("no image given: call path(...) or location(...)");
        }
        if (writable && readOnlyReason != null) {
            throw new IllegalArgumentException(readOnlyReason);
        }
        BlockOptions block = BlockOptions.take(options, directIO, noSync, lock);
        return new ChainOpener(plugins, new ChainOpener.Settings(gate, writableBacking, noBacking, backingOverride,
                backingOverrideFormat, dataFileOverride, block.formatOptions(), maxChainDepth, block.directIO(),
                block.noSync(), lock, block.lockTop(), shareRawWrites, resizing,
                secrets)).open(location, format, writable);
    }

    private void wipeOwnSecrets() {
        if (ownSecrets != null) {
            ownSecrets.close();
        }
    }
}
