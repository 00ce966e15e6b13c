package imago.cli.command;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageLimitException;
import imago.api.Preallocation;
import imago.cli.convert.BackingRuns;
import imago.cli.convert.Converter;
import imago.cli.convert.CopyOptions;
import imago.cli.convert.Progress;
import imago.cli.convert.Source;
import imago.cli.convert.Throttle;
import imago.cli.text.QemuOpts;
import imago.nbd.NbdLocation;
import imago.probe.FormatDescription;
import imago.probe.Imago;
import imago.probe.Opener;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * One run of {@code imago convert} once its options are checked: opens the sources (the first at an internal
 * snapshot with {@code -l}), creates the target (or opens it, {@code -n}), checks what qemu-img checks in the order
 * it checks it, and copies the sources one after the other into the target.
 */
final class ConvertJob {
    /** How many chunks are compressed at once: twice the cores, so that reads overlap compression. */
    private static final int COMPRESSORS = 2 * Runtime.getRuntime().availableProcessors();

    private final Session session;
    private final ConvertRequest c;
    private final ConvertRequest.Flags f;
    private final List<Image> sources = new ArrayList<>();
    /** The new image's {@code -o} options (for the key secret it is opened with), empty with {@code -n}. */
    private Map<String, String> createOpts = Map.of();
    /** The existing target's {@code --target-image-opts}, or {@code null}. */
    private ImageOpts targetOpts;

    ConvertJob(Session session, ConvertRequest request) {
        this.session = session;
        this.c = request;
        this.f = request.flags();
    }

    /** Runs the conversion and returns the exit status. */
    int run() throws IOException {
        List<String> names = c.files().subList(0, c.files().size() - 1);
        String dst = c.files().getLast();
        try {
            long total = 0;
            for (String name : names) {
                Image source = open(name);
                sources.add(source);
                total += source.size();
            }
            if (c.snapshot() != null) {
                ConvertSnapshots.load(session, c.snapshot(), c.format(), f.forceShare(), sources, names);
            }
            return convert(dst, total);
        } finally {
            for (Image s : sources) {
                try {
                    s.close();
                } catch (IOException | RuntimeException e) {
                    // the conversion's own outcome is what is reported
                }
            }
        }
    }

    private Image open(String name) throws IOException {
        if (!NbdLocation.isUri(name) && !session.imageOpts()) {
            RegularFileCheck.checkRegularFile(name);
        }
        try {
            // qemu-img convert keeps writers off its sources, raw ones too: the copy must be consistent
            return session.opener(name, c.format(), false).lock(!f.forceShare()).shareRawWrites(false).open();
        } catch (IOException | IllegalArgumentException e) {
            throw OpenFailures.couldNotOpen(session, name, c.format(), e);
        }
    }

    private int convert(String dst, long total) throws IOException {
        String outFormat = c.outputFormat();
        CreateOptions create = null;
        FileOptions fileOptions = null;
        String backingFile = c.backing();
        if (!f.noCreate()) {
            if (!Imago.formats().contains(outFormat)) {
                throw new CliException(null, "Unknown file format '" + outFormat + "'");
            }
            FormatDescription d = Imago.describe(outFormat);
            if (d.readOnly()) {
                throw new CliException(null, "Format driver '" + outFormat + "' does not support image creation");
            }
            Map<String, String> opts;
            try {
                opts = QemuOpts.parse(c.createOptions());
            } catch (IllegalArgumentException e) {
                throw new CliException(dst, e.getMessage());
            }
            try {
                CreateOptionTypes.check(outFormat, opts);
            } catch (IllegalArgumentException e) {
                throw new CliException(null, e.getMessage()); // qemu-img convert names no file here
            }
            Arguments.backingOptions(null, outFormat, c.backing() != null, c.backingFormat() != null);
            if (c.backing() != null) {
                opts.put("backing_file", c.backing());
            }
            if (c.backingFormat() != null) {
                opts.put("backing_fmt", c.backingFormat());
            }
            backingFile = opts.get("backing_file");
            fileOptions = FileOptions.take(opts, null);
            createOpts = Map.copyOf(opts);
            create = createOptions(opts, total);
        }
        boolean hasBacking = backingFile != null;
        if (f.targetIsZero() && hasBacking) {
            throw new CliException(null, "Cannot use --target-is-zero when the destination image has a backing file");
        }
        if (sources.size() > 1 && hasBacking) {
            throw new CliException(null, "Having a backing file for the target makes no sense when concatenating "
                    + "multiple input images");
        }
        if (create != null && backingFile != null && create.backingFormat().isEmpty()) {
            throw new CliException(null, "Use of backing file requires explicit backing format");
        }
        if (f.compress() && create != null && create.preallocation() != Preallocation.OFF) {
            throw new CliException(null, "Compression and preallocation not supported at the same time");
        }
        if (f.bitmaps()) {
            ConvertBitmaps.checkSources(sources, f.skipBrokenBitmaps(), session.program());
        }
        Path target = null;
        String export = null;
        String targetFormat = outFormat;
        if (create != null) {
            target = session.file(dst);
            try {
                fileOptions.check(null);
                // not synced, as qemu-img creates its target: the copy's final flush syncs it all unless -t unsafe
                session.create(dst, target, outFormat, create, false);
            } catch (CliException | IOException | IllegalArgumentException e) {
                // the target is left as create leaves it: untouched where the format refuses before making the file
                // (qcow2, luks: FormatDriver.checkCreate), empty where qemu-img too refuses after making it
                String why = e instanceof CliException x ? x.getMessage()
                        : e instanceof ImageLimitException x ? SizeLimits.convert(outFormat, x)
                        : Errors.describe(e, session, null);
                throw new CliException(null, dst + ": error while converting " + outFormat + ": " + why);
            }
        } else {
            String[] named = targetName(dst, outFormat);
            targetFormat = named[1];
            if (NbdLocation.isUri(named[0])) {
                export = named[0];
            } else {
                target = session.file(named[0]);
            }
        }
        boolean cannotCompress;
        try (Image out = export != null ? openExport(export, targetFormat)
                : openTarget(target, targetFormat, create == null)) {
            // as qemu-img's needs_compressed_writes: a target that stores each cluster once takes compressed ones
            boolean compressing = f.compress() || !out.supports(Feature.OVERWRITES)
                    && out.supports(Feature.COMPRESSED_WRITES);
            int cluster = compressing ? out.info().clusterSize().orElse(0) : 0;
            // qemu-img knows this from the format, before it creates the target
            cannotCompress = compressing && (cluster == 0 || Converter.CHUNK % cluster != 0);
            // an unknown mode: qemu-img refuses it after creating the target (and leaves it there)
            if (!cannotCompress && !Arguments.CACHE_MODES.contains(c.cache())) {
                throw new CliException(null, "Invalid cache option: " + c.cache());
            }
            if (f.bitmaps() && !ConvertBitmaps.supported(out)) {
                throw new CliException(null, "Format driver '" + out.format() + "' does not support bitmaps");
            }
            // qemu-img finds compression impossible before it compares the sizes
            if (!cannotCompress && create == null && out.size() < total) {
                throw new CliException(null, "output file is smaller than input file");
            }
            if (!cannotCompress) {
                copy(out, create == null, hasBacking, total, compressing ? cluster : 0,
                        create != null && create.preallocation() != Preallocation.OFF);
                if (f.bitmaps()) {
                    ConvertBitmaps.copy(sources.getFirst(), out, f.skipBrokenBitmaps(), session::error);
                }
            }
        }
        if (cannotCompress) {
            if (create != null) {
                // qemu-img refuses before creating anything: leave no half-made target behind
                Files.deleteIfExists(target);
            }
            throw new CliException(null, "Compression not supported for this file format");
        }
        return Cli.OK;
    }

    private void copy(Image out, boolean existing, boolean hasBacking, long total, int cluster, boolean preallocated)
            throws IOException {
        // a new image without a backing file reads as zeroes (but for LUKS's noise, and for a preallocated encrypted
        // one's clusters, which decrypt the file's zeroes to noise too: QEMU's qcow2_has_zero_init); an existing one
        // only if the user says so
        boolean zeroed = f.targetIsZero()
                || !existing && !hasBacking && Imago.describe(out.format()).zeroedWhenCreated()
                && !(preallocated && out.info().formatSpecific().containsKey("encrypt"));
        long backingSize = hasBacking && !existing ? out.backing().map(Image::size).orElse(-1L) : -1;
        Consumer<String> salvage = !f.salvage() ? null : f.quiet() ? m -> { } : m -> session.error("warning: " + m);
        // what the source's own backing file holds is left to the target's (qemu-img assumes they read alike)
        BackingRuns runs = hasBacking && sources.getFirst().backing().isPresent()
                ? BackingRuns.of(sources.getFirst()) : null;
        CopyOptions options = new CopyOptions(c.minSparse(), cluster > 0 ? COMPRESSORS : c.threads(),
                !f.outOfOrder(), zeroed, runs, backingSize, f.copyRange(),
                c.rateLimit() > 0 ? new Throttle(c.rateLimit()) : null, salvage);
        Progress shown = f.progress() && !f.quiet() ? new Progress(session.out(), total) : null;
        LongConsumer sink = shown == null ? bytes -> { } : shown;
        if (shown != null) {
            shown.start();
        }
        Source source = Source.concat(sources);
        (cluster > 0 ? Converter.compressing(source, out, options, sink, cluster)
                : new Converter(source, out, options, sink)).run();
        if (shown != null) {
            shown.finish();
        }
    }

    private Image openTarget(Path target, String format, boolean existing) throws IOException {
        Opener o = session.withSecrets(Imago.opener(), createOpts).path(target).writable(true)
                .noSync(c.cache().equals("unsafe")).gate(session.openGate(target));
        if (format != null) {
            o.format(format);
        }
        if (!existing) {
            return o.open();
        }
        if (targetOpts != null) {
            targetOpts.options().forEach(o::option);
            o.refuseWrites(targetOpts.writeRefusal());
        }
        String typed = c.files().getLast();
        RegularFileCheck.checkRegularFile(target.toString());
        Image image;
        try {
            image = o.open();
        } catch (IOException | IllegalArgumentException e) {
            throw OpenFailures.couldNotOpen(session, typed, e);
        }
        if (format == null && image.format().equals("raw")) {
            Arguments.warnProbedRaw(session, target.toString());
        }
        return image;
    }

    /**
     * An NBD export as the existing target ({@code -n}), as qemu-img writes into one: the export holds the image
     * ({@code -O raw}: the export is the disk; another format: the export holds that format's file, whose size is
     * fixed by the server).
     */
    private Image openExport(String uri, String format) throws IOException {
        Opener o = session.withSecrets(session.opener(uri, format), createOpts).writable(true)
                .noSync(c.cache().equals("unsafe"));
        Image image;
        try {
            image = o.open();
        } catch (IOException | IllegalArgumentException e) {
            throw OpenFailures.couldNotOpen(session, uri, e);
        }
        if (format == null && image.format().equals("raw")) {
            Arguments.warnProbedRaw(session, uri);
        }
        return image;
    }

    /**
     * The existing target's file and format: {@code dst} and {@code -O}, or with {@code --target-image-opts} the
     * {@code file.filename} and {@code driver} of the option string {@code dst}.
     */
    private String[] targetName(String dst, String outFormat) {
        if (!f.targetImageOpts()) {
            return new String[] {dst, outFormat};
        }
        if (outFormat != null) {
            throw new CliException(null, "--image-opts and --format are mutually exclusive");
        }
        Map<String, String> opts;
        try {
            opts = QemuOpts.parse(List.of(dst));
        } catch (IllegalArgumentException e) {
            throw new CliException(null, e.getMessage());
        }
        String file = opts.remove("file.filename");
        String driver = opts.remove("driver");
        opts.remove("file.driver");
        if (file == null) {
            throw new CliException(null, "Could not open '" + dst + "': A block device must be specified for "
                    + "\"file\"");
        }
        try {
            // checked as an --image-opts string is (the target is opened to discard, as qemu-img opens it), and
            // given to the library when the target opens, which refuses what the format does not take
            targetOpts = ImageOpts.of(driver, file, opts, true);
        } catch (IllegalArgumentException e) {
            throw new CliException(null, "Could not open '" + dst + "': " + e.getMessage());
        }
        return new String[] {file, driver};
    }

    private CreateOptions createOptions(Map<String, String> opts, long total) {
        CreateOptions.Builder builder = CreateOptions.builder();
        String preallocation = opts.remove("preallocation");
        if (preallocation != null) {
            try {
                builder.preallocation(Preallocation.parse(preallocation));
            } catch (IllegalArgumentException e) {
                throw new CliException(c.files().getLast(), e.getMessage());
            }
        }
        String backingFile = opts.remove("backing_file");
        String backingFormat = opts.remove("backing_fmt");
        if (backingFile != null) {
            builder.backingFile(backingFile);
        }
        if (backingFormat != null) {
            builder.backingFormat(backingFormat);
        }
        opts.forEach(builder::option);
        return builder.size(total).build();
    }
}
