package imago.cli.command;

import imago.api.Extent;
import imago.api.Image;
import imago.cli.convert.ReadFailure;
import imago.cli.info.InfoReport;
import imago.cli.map.MapWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code imago map}: how the guest bytes are stored, through the backing chain, as qemu-img map shows it. */
@Command(name = "map", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Shows where an image's guest bytes are stored, resolved through its backing chain, "
                + "as qemu-img map does.",
            "human: the data extents with their host offsets; json: every extent with depth, present, zero, "
                    + "data and offset."})
final class MapCommand implements Callable<Integer>, QemuOptionChecks {
    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

    @Mixin
    private OutputOption output;

    @Option(names = {"-s", "--start-offset"}, paramLabel = "OFFSET", description = "First byte to map (default 0).")
    private String startOffset;

    @Option(names = {"-l", "--max-length"}, paramLabel = "LENGTH",
            description = "Map at most LENGTH bytes (default: up to the end).")
    private String maxLength;

    @Mixin
    private ForceShareOption forceShare;

    @Mixin
    private ImageFile file;

    /** A layer's storage name and the name qemu-img shows for it. */
    private record Shown(String storage, String display) {
    }

    MapCommand(Session session) {
        this.session = session;
    }

    /** The command with the options {@link DirectRun} parsed instead of picocli. */
    MapCommand(Session session, FormatOption format, OutputOption output, String startOffset, String maxLength,
            ForceShareOption forceShare, ImageFile file) {
        this.session = session;
        this.format = format;
        this.output = output;
        this.startOffset = startOffset;
        this.maxLength = maxLength;
        this.forceShare = forceShare;
        this.file = file;
    }

    /** qemu-img's map checks the start offset and the length as it reads them. */
    @Override
    public void checkOption(String option, String value, List<String> before) {
        switch (option) {
            case "--start-offset" -> Arguments.sizeInTwoReports("start offset", value, Long.MAX_VALUE);
            case "--max-length" -> Arguments.sizeInTwoReports("max length", value, Long.MAX_VALUE);
            default -> { }
        }
    }

    @Override
    public Integer call() throws IOException {
        MapWriter.Format form = output.json() ? MapWriter.Format.JSON : MapWriter.Format.HUMAN;
        long start = startOffset == null ? 0 : Arguments.sizeInTwoReports("start offset", startOffset, Long.MAX_VALUE);
        long length = maxLength == null ? -1 : Arguments.sizeInTwoReports("max length", maxLength, Long.MAX_VALUE);
        try (Image image = OpenFailures.open(session, session.opener(file.name(), format.name(), false)
                .lock(!forceShare.given()), file.name(), format.name())) {
            List<Shown> layers = layers(image);
            try {
                new MapWriter(image, session.out(), form, e -> displayName(layers, e)).write(start, length);
            } catch (MapWriter.UnmappableException e) {
                throw new CliException(null, e.getMessage()); // qemu-img names no file here
            } catch (IOException e) {
                if (ReadFailure.invalidArgument(e)) { // damage QEMU's driver meets with EINVAL, in qemu-img's words
                    throw new CliException(null, "Could not read file metadata: Invalid argument");
                }
                throw e;
            }
        }
        return Cli.OK;
    }

    /** Each layer's storage name and the name qemu-img shows for it (as typed, or combined with the referrer's). */
    private List<Shown> layers(Image top) throws IOException {
        List<Shown> layers = new ArrayList<>();
        String shown = session.fileName(file.name());
        for (Optional<Image> layer = Optional.of(top); layer.isPresent(); layer = layer.get().backing()) {
            layers.add(new Shown(layer.get().name(), shown));
            InfoReport.Layer l = new InfoReport.Layer(shown, layer.get().info());
            Optional<Image> next = layer.get().backing();
            shown = next.isPresent() ? l.fullBackingName().orElse(next.get().name()) : null;
        }
        return layers;
    }

    /**
     * The name qemu-img shows for the file holding {@code e}: the layer's own name, or for another file of
     * that layer (an external data file) its name relative to the layer's, combined like qemu's
     * {@code path_combine} with the layer's shown name.
     */
    private String displayName(List<Shown> layers, Extent e) {
        String storage = e.file().orElseThrow();
        if (e.depth() >= layers.size()) {
            return session.display(storage);
        }
        Shown layer = layers.get(e.depth());
        if (storage.equals(layer.storage())) {
            return layer.display();
        }
        try {
            Path dir = Path.of(layer.storage()).toAbsolutePath().getParent();
            Path p = Path.of(storage);
            if (dir != null && p.isAbsolute() && !layer.display().startsWith("/")) {
                return InfoReport.combine(layer.display(), dir.relativize(p).toString());
            }
        } catch (IllegalArgumentException ex) { // InvalidPathException included
            // not file paths (e.g. memory: names): show the storage's own name
        }
        return session.display(storage);
    }
}
