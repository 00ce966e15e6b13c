package imago.cli.command;

import imago.api.Image;
import imago.cli.io.QemuIo;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code imago io}: qemu-io's commands on one image. */
@Command(name = "io", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Runs qemu-io commands on an image (writable unless -r); 'help' lists them.",
            "Without -c, reads commands from standard input, one per line."})
final class IoCommand implements Callable<Integer> {
    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

    @Option(names = {"-r", "--read-only"}, description = "Open read-only.")
    private boolean readOnly;

    @Option(names = {"-c", "--cmd"}, paramLabel = "CMD", description = "A command to run (repeatable), "
            + "e.g. 'write -P 0xab 1M 64k'.")
    private List<String> commands = new ArrayList<>();

    @Mixin
    private ForceShareOption forceShare;

    @Mixin
    private ImageFile file;

    IoCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        try (Image image = session.opener(file.name(), format.name()).writable(!readOnly).lock(!forceShare.given())
                .open()) {
            if (format.name() == null && !readOnly && image.format().equals("raw")) {
                Arguments.warnProbedRaw(session, file.name());
            }
            QemuIo io = new QemuIo(image, file.name(), session.out(), session.err(), e -> Errors.describe(e, session));
            return commands.isEmpty() ? io.run(System.in) : io.run(commands);
        }
    }
}
