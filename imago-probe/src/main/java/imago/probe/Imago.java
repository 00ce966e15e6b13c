package imago.probe;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.Measurement;
import imago.api.OpenGate;
import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.UnknownFormatException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.AlignedStorage;
import imago.api.spi.Dependency;
import imago.api.spi.FormatDriver;
import imago.api.spi.Storage;
import imago.api.spi.StorageOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Opens, probes and creates images with the installed format drivers and storage providers.
 *
 * <pre>{@code
 * try (Image image = Imago.open(Path.of("disk.qcow2"))) {
 *     ByteBuffer buf = ByteBuffer.allocate(4096);
 *     image.read(buf, 0);
 * }
 * }</pre>
 *
 * <p>Files that an image names (backing files, external data files) are opened only through the
 * {@link OpenGate} of the {@link Opener}: by default {@link OpenGate#permissive()}, as qemu-img does.
 */
public final class Imago {

    private Imago() {
    }

    /**
     * Opens {@code path} read-only, probing its format and opening its backing chain permissively.
     *
     * @throws IOException if it cannot be opened (see {@link Opener#open()})
     */
    public static Image open(Path path) throws IOException {
        return opener().path(path).open();
    }

    /** A builder for every other way of opening an image. */
    public static Opener opener() {
        return new Opener(Plugins.installed());
    }

    /** A builder that uses the format drivers and storage providers of {@code layer} (for plug-in hosts). */
    public static Opener opener(ModuleLayer layer) {
        return new Opener(Plugins.of(Objects.requireNonNull(layer, "layer")));
    }

    /** The names of the installed format drivers. */
    public static List<String> formats() {
        return Plugins.installed().formatNames();
    }

    /**
     * What the installed format {@code name} can do.
     *
     * @throws UnknownFormatException if no such format is installed
     */
    public static FormatDescription describe(String name) throws UnknownFormatException {
        FormatDriver d = Plugins.installed().driver(name, name);
        return new FormatDescription(d.name(), d.supportsBacking(), d.recordsBackingFormat(), d.createOptionNames(),
                d.readOnly(), d.reportsDirtyFlag(), d.createsZeroedImages());
    }

    /**
     * Which installed format {@code path} is in, as {@link #open(Path)} would decide.
     *
     * @throws UnknownFormatException if no driver recognises it
     * @throws IOException if the file cannot be read or two drivers claim it equally
     */
    public static String probe(Path path) throws IOException {
        StorageLocation location = StorageLocation.file(path);
        Plugins plugins = Plugins.installed();
        try (Storage storage = plugins.storage(location).open(location, StorageOptions.readOnly().withLock(false))) {
            return Probing.probe(plugins, storage).driver().name();
        }
    }

    /**
     * Creates a new image of {@code format} at {@code path}, replacing any file there. Options the format refuses before
     * making the file ({@link FormatDriver#checkCreate}, as qemu-img does for qcow2 and luks) leave any file there as
     * it was; the others leave it empty, as qemu-img leaves it.
     *
     * @throws UnknownFormatException if the format is not installed
     * @throws UnsupportedFeatureException ({@link Feature#CREATE}) if the format can only be read
     * @throws IllegalArgumentException if an option is invalid for the format
     * @throws IOException if the file cannot be written, or the backing file (needed for its size when
     *         no size is given) cannot be opened
     */
    public static void create(Path path, String format, CreateOptions options) throws IOException {
        create(StorageLocation.file(path), format, options);
    }

    /**
     * The options of a new image as {@code qemu-img create} lists them ("Formatting ..."), in the
     * format's order with the defaults it shows.
     *
     * @param preallocation the preallocation mode as the user named it, or {@code null}
     * @throws UnknownFormatException if the format is not installed
     */
    public static java.util.SequencedMap<String, String> formattingOptions(String format, CreateOptions options,
            String preallocation) throws UnknownFormatException {
        return Plugins.installed().driver(format, format).formattingOptions(options, preallocation);
    }

    /**
     * How large a new image of {@code format} made with {@code options} would be ({@code qemu-img measure}):
     * empty, or holding {@code source}'s data when it is not {@code null}.
     *
     * @throws UnknownFormatException if the format is not installed
     * @throws UnsupportedFeatureException if the format cannot measure (qemu-img's message)
     * @throws IllegalArgumentException if an option is invalid for the format
     * @throws IOException if {@code source} cannot be read
     */
    public static Measurement measure(String format, CreateOptions options, Image source) throws IOException {
        FormatDriver driver = Plugins.installed().driver(format, format);
        return driver.measure(options, source).orElseThrow(() -> new UnsupportedFeatureException(format,
                Feature.MEASURE, "Block driver '" + format + "' does not support size measurement"));
    }

    /**
     * Creates a new image of {@code format} at {@code location}.
     *
     * @throws IOException as {@link #create(Path, String, CreateOptions)}
     */
    public static void create(StorageLocation location, String format, CreateOptions options) throws IOException {
        create(location, format, options, true);
    }

    /**
     * Creates a new image of {@code format} at {@code location}, synced to stable media if {@code durable}; else the
     * write-back is left to the operating system, as QEMU's {@code unsafe} cache mode does ({@code qemu-img convert
     * -t unsafe} creates its target without a sync).
     *
     * @throws IOException as {@link #create(Path, String, CreateOptions)}
     */
    public static void create(StorageLocation location, String format, CreateOptions options, boolean durable)
            throws IOException {
        Plugins plugins = Plugins.installed();
        FormatDriver driver = plugins.driver(format, location.toString());
        if (driver.readOnly()) {
            throw new UnsupportedFeatureException(location.toString(), Feature.CREATE,
                    "Format driver '" + driver.name() + "' does not support image creation");
        }
        CreateOptions effective = options;
        if (options.backingFile().isPresent() && (options.size().isEmpty()
                || wants(driver, options, BACKING_MTIME) || wants(driver, options, BACKING_CID))) {
            effective = withBackingFacts(plugins, location, options, driver);
        }
        if (effective.size().isEmpty()) {
            throw new IllegalArgumentException("Image creation needs a size parameter");
        }
        // before any file is made or emptied: a refusal here leaves the file system as it was
        driver.checkCreate(location, effective);
        List<Storage> created = new ArrayList<>();
        try {
            for (Dependency file : driver.createdFiles(location, effective)) {
                // named by the user creating the image, not read from one: no gate
                StorageLocation where = sibling(location, file.storedName());
                Storage data = AlignedStorage.wrap(plugins.storage(where).open(where, StorageOptions.createNew()));
                created.add(data);
                data.resize(effective.size().getAsLong(), Preallocation.OFF);
                data.flush();
                if (durable) {
                    data.sync();
                }
            }
            try (Storage storage = AlignedStorage.wrap(plugins.storage(location).open(location,
                    StorageOptions.createNew()))) {
                driver.create(storage, effective, List.copyOf(created));
                for (Storage data : created) {
                    // what the driver wrote into them is durable with the image
                    data.flush();
                    if (durable) {
                        data.sync();
                    }
                }
                storage.flush();
                if (durable) {
                    storage.sync();
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            closeAll(created, e);
            throw e;
        }
        closeAll(created, null);
    }

    /** Closes each; a failure is added to {@code primary}, or (the first one) thrown after all are closed. */
    private static void closeAll(List<Storage> storages, Throwable primary) throws IOException {
        IOException first = null;
        for (Storage s : storages) {
            try {
                s.close();
            } catch (IOException e) {
                if (primary != null) {
                    primary.addSuppressed(e);
                } else if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** Where a file named {@code name} next to the image at {@code location} is, as qemu-img resolves it. */
    private static StorageLocation sibling(StorageLocation location, String name) {
        if (location.scheme().equals("file")) {
            Path path = Path.of(name);
            Path dir = location.path().getParent();
            return StorageLocation.file(path.isAbsolute() || dir == null ? path : dir.resolve(path));
        }
        return new StorageLocation(location.scheme(), name);
    }

    /** The create option through which formats that record it (cow) get the backing file's mtime. */
    private static final String BACKING_MTIME = "backing_mtime";
    /**
     * The create option through which formats that record it (vmdk's parentCID) get the backing image's content ID:
     * the {@code cid} of its {@link imago.api.ImageInfo#formatSpecific() format-specific} information.
     */
    private static final String BACKING_CID = "backing_cid";

    /** Whether {@code driver} takes the create option {@code name} and it was not given. */
    private static boolean wants(FormatDriver driver, CreateOptions options, String name) {
        return driver.createOptionNames().contains(name) && !options.formatOptions().containsKey(name);
    }

    /**
     * Fills in what a new overlay takes from its backing file, resolved next to the new image as
     * qemu-img does: the size when none is given, and the modification time (seconds) for formats that
     * record it.
     */
    private static CreateOptions withBackingFacts(Plugins plugins, StorageLocation location, CreateOptions options,
            FormatDriver driver) throws IOException {
        String name = options.backingFile().orElseThrow();
        StorageLocation backing = sibling(location, name);
        CreateOptions.Builder copy = CreateOptions.builder().preallocation(options.preallocation()).backingFile(name);
        options.backingFormat().ifPresent(copy::backingFormat);
        options.formatOptions().forEach(copy::option);
        options.size().ifPresent(copy::size);
        if (options.size().isEmpty() || wants(driver, options, BACKING_CID)) {
            Opener opener = new Opener(plugins).location(backing);
            options.backingFormat().ifPresent(opener::format);
            try (Image b = opener.open()) {
                if (options.size().isEmpty()) {
                    copy.size(b.size());
                }
                if (wants(driver, options, BACKING_CID) && b.info().formatSpecific().get("cid") instanceof Number cid) {
                    copy.option(BACKING_CID, Long.toString(cid.longValue()));
                }
            } catch (ImageException e) {
                throw new ImageException(location.toString(), -1, "Could not open backing image: " + e.getMessage(),
                        e);
            }
        }
        if (driver.createOptionNames().contains(BACKING_MTIME) && !options.formatOptions().containsKey(BACKING_MTIME)
                && backing.scheme().equals("file") && java.nio.file.Files.exists(backing.path())) {
            long mtime = java.nio.file.Files.getLastModifiedTime(backing.path()).to(java.util.concurrent.TimeUnit.SECONDS);
            copy.option(BACKING_MTIME, Long.toString(mtime));
        }
        return copy.build();
    }
}
