package imago.probe;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.ImageLockedException;
import imago.api.OpenDeniedException;
import imago.api.OpenGate;
import imago.api.OpenRequest;
import imago.api.ReadOnlyImageException;
import imago.api.Secrets;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.AlignedStorage;
import imago.api.spi.BackingFacts;
import imago.api.spi.Confidence;
import imago.api.spi.Dependency;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import imago.api.spi.StorageOptions;
import imago.api.spi.WriteGuard;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One open of an image and its dependencies, with the settings an {@link Opener} collected: each layer's storage,
 * its driver (named or probed), then what the layer names: its backing file (through the gate, by its recorded
 * format or probed if the gate allows, the chain's loops and depth checked), its external data file and its extent
 * files; what was opened is closed again if anything fails.
 */
final class ChainOpener {
    private static final int MAX_EXTENT_FILES = Opener.MAX_EXTENT_FILES;
    /** The one format without metadata, whose locks let other writers in (QEMU's raw driver passes them through). */
    private static final String RAW = "raw";

    /** What an open is asked to do, beyond the top image and its format. */
    record Settings(OpenGate gate, int writableBacking, boolean noBacking, StorageLocation backingOverride,
            String backingOverrideFormat, StorageLocation dataFileOverride, Map<String, String> options,
            int maxChainDepth, boolean directIO, boolean noSync, boolean lock, boolean lockTop, boolean shareRawWrites,
            boolean resizing, Secrets secrets) {
        Settings {
            options = Map.copyOf(options);
        }
    }

    private final Plugins plugins;
    private final OpenGate gate;
    private final int writableBacking;
    private final boolean noBacking;
    private final StorageLocation backingOverride;
    private final String backingOverrideFormat;
    private final StorageLocation dataFileOverride;
    private final Map<String, String> options;
    private final int maxChainDepth;
    private final boolean directIO;
    private final boolean noSync;
    private final boolean lock;
    private final boolean lockTop;
    private final boolean shareRawWrites;
    private final boolean resizing;
    private final Secrets secrets;

    ChainOpener(Plugins plugins, Settings settings) {
        this.plugins = plugins;
        this.gate = settings.gate();
        this.writableBacking = settings.writableBacking();
        this.noBacking = settings.noBacking();
        this.backingOverride = settings.backingOverride();
        this.backingOverrideFormat = settings.backingOverrideFormat();
        this.dataFileOverride = settings.dataFileOverride();
        this.options = settings.options();
        this.maxChainDepth = settings.maxChainDepth();
        this.directIO = settings.directIO();
        this.noSync = settings.noSync();
        this.lock = settings.lock();
        this.lockTop = settings.lockTop();
        this.shareRawWrites = settings.shareRawWrites();
        this.resizing = settings.resizing();
        this.secrets = settings.secrets();
    }

    /** Opens the image at {@code where} (in {@code formatName}, or probed if null) and all it depends on. */
    Image open(StorageLocation where, String formatName, boolean write) throws IOException {
        return openLayer(where, formatName, write, 0, new LinkedHashSet<>(), true);
    }

    private Image openLayer(StorageLocation where, String formatName, boolean write, int depth, Set<String> chain,
            boolean top) throws IOException {
        String identity = identity(where);
        if (!chain.add(identity)) {
            throw new CorruptImageException(where.toString(), "backing chain loops back to " + where
                    + " (chain: " + String.join(" -> ", chain) + " -> " + identity + ")");
        }
        // file.locking=off is the top file's alone, as in QEMU: the files below keep their locks
        StorageOptions storageOptions = (write ? StorageOptions.readWrite() : StorageOptions.readOnly())
                .withDirectIO(directIO).withLock(top ? lockTop : lock)
                .withSharedWrites(shareRawWrites && RAW.equals(formatName)).withResizing(top && resizing);
        boolean probeFirst = formatName == null && shareRawWrites && storageOptions.lock()
                && where.scheme().equals("file");
        Probed first = probeFirst ? openProbed(where, storageOptions)
                : new Probed(plugins.storage(where).open(where, storageOptions), false, null);
        Storage storage = noSync(write, AlignedStorage.wrap(first.storage()));
        List<Closeable> opened = new ArrayList<>();
        opened.add(storage);
        try {
            FormatDriver driver;
            boolean probed = formatName == null;
            Confidence confidence = Confidence.STRONG;
            if (probed) {
                // a storage reopened to share a raw file's writes is probed again: it may have changed in between
                Probing.Result result = first.result() != null && !first.sharesWrites() ? first.result()
                        : Probing.probe(plugins, storage);
                driver = result.driver();
                if (first.sharesWrites() && !driver.name().equals(RAW)) {
                    // the file changed from raw to a format with metadata between its opens: never share its writes
                    throw new ImageLockedException(where.toString(), "the file changed while it was opened");
                }
                confidence = result.confidence();
            } else {
                driver = plugins.driver(formatName, where.toString());
            }
            if (write && driver.readOnly()) {
                throw new ReadOnlyImageException(where.toString(), "the " + driver.name()
                        + " format can only be read");
            }
            if (top) {
                checkOptions(driver, where.toString());
            }
            FormatInstance layer = driver.open(storage, new OpenContext(write, probed, options, secrets));
            opened.add(0, layer);
            LayeredImage.Builder builder = LayeredImage.builder(driver.name(), layer, storage).writable(write);
            if (probed && write && confidence == Confidence.WEAK) {
                builder.writeGuard(sectorGuard(driver, storage.name()));
            }
            List<Dependency> dependencies = layer.dependencies();
            if (dependencies.stream().filter(Dependency.ExtentFile.class::isInstance).count() > MAX_EXTENT_FILES) {
                throw new ImageLimitException(where.toString(), "the image names more than " + MAX_EXTENT_FILES
                        + " extent files");
            }
            Set<String> extentIdentities = new HashSet<>();
            for (Dependency dependency : dependencies) {
                switch (dependency) {
                    case Dependency.BackingFile backing -> {
                        Image image = openBacking(where, storage, backing, depth, chain, top);
                        if (image != null) {
                            opened.add(0, image);
                            layer.checkBacking(image instanceof LayeredImage l
                                    ? new BackingFacts(l.format(), l.size(), l.storage().lastModified(),
                                            l.layer().formatSpecific())
                                    : BackingFacts.ofSize(image.format(), image.size()));
                            builder.backing(image, true);
                        }
                    }
                    case Dependency.DataFile data -> {
                        StorageLocation target = top && dataFileOverride != null ? dataFileOverride
                                : gated(where, storage, data.storedName(), OpenRequest.Purpose.DATA_FILE, depth);
                        try {
                            attach(layer, data, target, storageOptions, write, opened, builder);
                        } catch (NoSuchFileException e) {
                            // opened for its metadata only (qemu-img info), a missing data file is no matter, as in
                            // QEMU: it stays unattached, and reading the data fails
                            if (!"on".equals(options.get(OpenContext.NO_IO_OPTION))) {
                                throw e;
                            }
                        }
                    }
                    case Dependency.ExtentFile extent -> {
                        StorageLocation target = gated(where, storage, extent.storedName(),
                                OpenRequest.Purpose.EXTENT_FILE, depth);
                        if (!extentIdentities.add(identity(target)) || identity(target).equals(identity)) {
                            throw new CorruptImageException(where.toString(), "extent file '" + extent.storedName()
                                    + "' is named twice, or is the image itself");
                        }
                        boolean writeExtent = write && extent.writable();
                        StorageOptions extentOptions = (writeExtent ? StorageOptions.readWrite()
                                : StorageOptions.readOnly()).withDirectIO(directIO).withLock(lock);
                        attach(layer, extent, target, extentOptions, writeExtent, opened, builder);
                    }
                }
            }
            return builder.build();
        } catch (IOException | RuntimeException | Error e) {
            for (Closeable c : opened) {
                try {
                    c.close();
                } catch (IOException | RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        } finally {
            chain.remove(identity);
        }
    }

    private Image openBacking(StorageLocation where, Storage storage, Dependency.BackingFile backing, int depth,
            Set<String> chain, boolean top) throws IOException {
        if (top && (noBacking || "on".equals(options.get(OpenContext.CHECK_OPTION)))) {
            return null;
        }
        if (top && backingOverride != null) {
            return openLayer(backingOverride, backingOverrideFormat, depth < writableBacking, depth + 1, chain, false);
        }
        if (depth + 1 > maxChainDepth) {
            throw new ImageLimitException(where.toString(), "backing chain is deeper than " + maxChainDepth
                    + " images");
        }
        StorageLocation target = gated(where, storage, backing.storedName(), OpenRequest.Purpose.BACKING_FILE, depth);
        String backingFormat = backing.format().orElse(null);
        if (backingFormat == null) {
            OpenRequest request = new OpenRequest(where, backing.storedName(), target,
                    OpenRequest.Purpose.BACKING_FILE, depth);
            if (!gate.allowsProbing(request)) {
                throw new OpenDeniedException(where.toString(), "backing file '" + backing.storedName()
                        + "' has no recorded format, and the open gate does not allow probing it");
            }
        }
        return openLayer(target, backingFormat, depth < writableBacking, depth + 1, chain, false);
    }

    /** Opens a data or extent file the layer named, hands it to the layer, and closes it with the image. */
    private void attach(FormatInstance layer, Dependency dependency, StorageLocation target, StorageOptions options,
            boolean write, List<Closeable> opened, LayeredImage.Builder builder) throws IOException {
        Storage s = noSync(write, AlignedStorage.wrap(plugins.storage(target).open(target, options)));
        opened.add(0, s);
        layer.attach(dependency, s);
        builder.alsoClose(s);
    }

    /**
     * Refuses an option the top layer's driver does not take, in QEMU's words, before it opens: ignored, an option
     * such as raw's {@code offset} would have reads and writes land elsewhere than the user asked.
     */
    private void checkOptions(FormatDriver driver, String where) throws UnsupportedFeatureException {
        Set<String> known = driver.openOptionNames();
        for (String name : options.keySet()) {
            if (name.equals("snapshot") && !known.contains(name)) {
                // Opener.snapshot on a format without internal snapshots: QEMU's bdrv_snapshot_load_tmp refusal
                throw new UnsupportedFeatureException(where, Feature.INTERNAL_SNAPSHOTS, "loading an internal snapshot",
                        "Block format '" + driver.name() + "' used by device '' does not support temporarily loading "
                        + "internal snapshots");
            }
            if (!known.contains(name) && !name.equals(OpenContext.CHECK_OPTION)
                    && !name.equals(OpenContext.NO_IO_OPTION)) {
                throw new IllegalArgumentException("Block format '" + driver.name() + "' does not support the option '"
                        + name + "'");
            }
        }
    }

    private Storage noSync(boolean write, Storage storage) {
        return noSync && write ? new NoSyncStorage(storage) : storage;
    }

    /** Resolves a stored name against the naming image and asks the gate. */
    private StorageLocation gated(StorageLocation where, Storage storage, String storedName,
            OpenRequest.Purpose purpose, int depth) throws IOException {
        StorageLocation target = storage.resolve(storedName).orElseThrow(() -> new OpenDeniedException(
                where.toString(), "cannot resolve the " + (purpose == OpenRequest.Purpose.BACKING_FILE
                        ? "backing" : purpose == OpenRequest.Purpose.DATA_FILE ? "data" : "extent") + " file name '"
                        + storedName + "' stored in the image"));
        gate.check(new OpenRequest(where, storedName, target, purpose, depth));
        return target;
    }

    /** Refuses writes that would make a probed raw image look like another format (CVE-2008-2004). */
    private WriteGuard sectorGuard(FormatDriver chosen, String resource) {
        List<FormatDriver> others = plugins.drivers().stream().filter(d -> d != chosen).toList();
        return firstSector -> {
            for (FormatDriver other : others) {
                Confidence c = Probing.ask(other, firstSector, Long.MAX_VALUE);
                if (c.compareTo(Confidence.WEAK) > 0) {
                    throw new ImageException(resource, 0, "refusing a write to sector 0 that would make this "
                            + chosen.name() + " image probe as " + other.name()
                            + "; open it with an explicit format to allow it", null);
                }
            }
        };
    }

    /**
     * Opens a file whose format is probed with the locks its format asks for: a raw one's let other writers in (see
     * {@link Opener#shareRawWrites}). QEMU locks once its format is known; imago probes through the locked storage,
     * so a file that probes as raw is opened again sharing writes (closed first: our own first open's locks would
     * refuse the second), and one that another process writes as raw, refused by the first open, is probed unlocked.
     */
    private Probed openProbed(StorageLocation where, StorageOptions options) throws IOException {
        Storage storage;
        try {
            storage = plugins.storage(where).open(where, options);
        } catch (ImageLockedException e) {
            boolean raw;
            try (Storage unlocked = plugins.storage(where).open(where, StorageOptions.readOnly().withLock(false))) {
                raw = probesRaw(unlocked);
            } catch (IOException | RuntimeException probeFailure) {
                e.addSuppressed(probeFailure);
                throw e;
            }
            if (!raw) {
                throw e;
            }
            return new Probed(plugins.storage(where).open(where, options.withSharedWrites(true)), true, null);
        }
        Probing.Result result;
        try {
            result = Probing.probe(plugins, AlignedStorage.wrap(storage)); // O_DIRECT takes aligned reads only
        } catch (IOException | RuntimeException probeFailure) {
            try {
                storage.close();
            } catch (IOException closeFailure) {
                probeFailure.addSuppressed(closeFailure);
            }
            throw probeFailure;
        }
        if (!result.driver().name().equals(RAW)) {
            return new Probed(storage, false, result);
        }
        storage.close();
        return new Probed(plugins.storage(where).open(where, options.withSharedWrites(true)), true, null);
    }

    /**
     * A storage opened for probing, whether its locks share writes (it probed raw), and what the probe found in this
     * storage, if it was probed ({@code null} if not).
     */
    private record Probed(Storage storage, boolean sharesWrites, Probing.Result result) {
    }

    private boolean probesRaw(Storage storage) throws IOException {
        return Probing.probe(plugins, storage).driver().name().equals(RAW);
    }

    /** The same file reached by different names (links, relative paths) must count as the same. */
    private static String identity(StorageLocation where) {
        if (where.scheme().equals("file")) {
            try {
                Path p = where.path();
                if (Files.exists(p)) {
                    return p.toRealPath().toString();
                }
            } catch (IOException e) {
                return where.toString();
            }
        }
        return where.toString();
    }
}
