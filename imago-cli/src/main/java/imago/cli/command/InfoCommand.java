package imago.cli.command;

import imago.api.Image;
import imago.cli.info.InfoReport;
import imago.probe.Opener;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code imago info}: what {@code qemu-img info} shows, in its human or JSON form. */
@Command(name = "info", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Shows an image's format, sizes and backing file, as qemu-img info does.")
final class InfoCommand implements Callable<Integer> {
    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

    @Mixin
    private OutputOption output;

    @Option(names = "--backing-chain", description = "Show every image of the backing chain.")
    private boolean chain;

    @Mixin
    private ForceShareOption forceShare;

    @Mixin
    private ImageFile file;

    InfoCommand(Session session) {
        this.session = session;
    }

    /** The command with the options {@link DirectRun} parsed instead of picocli. */
    InfoCommand(Session session, FormatOption format, OutputOption output, boolean chain, ForceShareOption forceShare,
            ImageFile file) {
        this.session = session;
        this.format = format;
        this.output = output;
        this.chain = chain;
        this.forceShare = forceShare;
        this.file = file;
    }

    @Override
    public Integer call() throws IOException {
        boolean json = output.json();
        // like qemu-img, which opens with BDRV_O_NO_IO: metadata only (an unnamed external data file is no matter)
        Opener opener = session.opener(file.name(), format.name(), false).lock(!forceShare.given())
                .metadataOnly(true);
        if (!chain) {
            // like qemu-img, which opens with BDRV_O_NO_BACKING: a missing backing file does not matter
            opener.noBacking();
        }
        try (Image top = OpenFailures.openEachLayer(session, opener, file.name(), format.name())) {
            List<InfoReport.Layer> layers = new ArrayList<>();
            String name = session.shownName(file.name(), top);
            for (Optional<Image> layer = Optional.of(top); layer.isPresent(); layer = layer.get().backing()) {
                InfoReport.Layer l = new InfoReport.Layer(name, layer.get().info());
                layers.add(l);
                if (!chain) {
                    break;
                }
                Optional<Image> next = layer.get().backing();
                name = next.isPresent() ? l.fullBackingName().orElse(next.get().name()) : null;
            }
            if (json) {
                session.out().println(InfoReport.json(layers, chain));
            } else {
                session.out().print(InfoReport.human(layers));
            }
        }
        return Cli.OK;
    }
}
