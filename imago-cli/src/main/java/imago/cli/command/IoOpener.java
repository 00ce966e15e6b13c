package imago.cli.command;

import imago.api.Image;
import imago.cli.io.ImageOpener;
import imago.cli.io.IoOptions;
import imago.cli.io.OpenArguments;
import imago.cli.io.OpenedImage;
import imago.nbd.NbdLocation;
import imago.probe.Opener;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Opens the images of {@code imago io} (its command line's and its {@code open} command's) as qemu-io opens them:
 * the cache, AIO and discard modes checked with qemu-io's messages, {@code -s} on a temporary overlay, and a
 * failure worded {@code can't open device NAME: reason}.
 */
final class IoOpener implements ImageOpener {

    private final Session session;

    IoOpener(Session session) {
        this.session = session;
    }

    /**
     * Refuses an unknown cache, AIO or discard mode, as qemu-io does before it opens anything.
     *
     * @throws CliException with qemu-io's message
     */
    static void checkModes(String cache, String aio, String discard) {
        try {
            OpenArguments.checkModes(cache, aio, discard);
        } catch (IllegalArgumentException e) {
            throw new CliException(null, e.getMessage());
        }
    }

    /** The options the user gave for the image: {@code open -o}'s and the {@code --image-opts} string's. */
    private Map<String, String> givenOptions(String name, ImageOpts extra) {
        Map<String, String> given = new LinkedHashMap<>(extra.options());
        if (session.imageOpts() && !NbdLocation.isUri(name) && extra.filename() == null) {
            given.putAll(session.imageOpts(name).options());
        }
        return given;
    }

    @Override
    public OpenedImage open(OpenArguments a) throws IOException {
        checkModes(a.cache(), a.aio(), a.discard());
        Map<String, String> options = new LinkedHashMap<>(a.options());
        String format = options.remove("driver");
        String fileName = options.remove("file.filename");
        String name = a.name() != null ? a.name() : fileName;
        if (name == null) {
            throw new CliException(null, "can't open: Must specify either driver or file");
        }
        boolean direct = List.of("none", "off", "directsync").contains(a.cache());
        // with options, whose cache.direct wins over -t, the library checks -i native against what they make of it
        boolean optionString = session.imageOpts() && !NbdLocation.isUri(name) || !options.isEmpty();
        if (a.aio().equals("native") && !direct && !optionString) {
            throw new CliException(null, "can't open device " + name + ": aio=native was specified, but it "
                    + "requires cache.direct=on, which was not specified.");
        }
        // qemu-io's -d: its default (unmap) allows an option string's detect-zeroes=unmap
        session.unmapsByDefault(OpenArguments.unmaps(a.discard()));
        try {
            // qemu-io's open -o options, checked as an option string's are
            ImageOpts extra = ImageOpts.of(format, fileName, options, OpenArguments.unmaps(a.discard()));
            String discard = a.discard();
            if (extra.discard() != null) {
                discard = extra.discard();
            } else if (session.imageOpts() && fileName == null && !NbdLocation.isUri(name)) {
                // the option string's own discard mode overrides -d, as in qemu-io
                String given = session.imageOpts(name).discard();
                discard = given != null ? given : discard;
            }
            IoOptions io = new IoOptions(OpenArguments.unmaps(discard), a.copyOnRead(),
                    a.cache().equals("writethrough") || a.cache().equals("directsync"));
            if (a.snapshot() && !a.readOnly()) {
                if (!extra.options().isEmpty()) {
                    throw new CliException(null, "a temporary overlay (-s) over an image opened with format options "
                            + "is not supported");
                }
                TemporaryOverlay overlay = TemporaryOverlay.open(session, name, format, "imago-io-snapshot-",
                        !a.forceShare(), direct);
                return new OpenedImage(overlay.image(), io, overlay::close);
            }
            Opener opener = session.opener(name, format).writable(!a.readOnly()).lock(!a.forceShare())
                    .directIO(direct).noSync(a.cache().equals("unsafe"));
            extra.options().forEach(opener::option);
            if (optionString && a.aio().equals("native") && !givenOptions(name, extra).containsKey("file.aio")) {
                opener.option("file.aio", a.aio());
            }
            if (extra.writeRefusal() != null) {
                opener.refuseWrites(extra.writeRefusal());
            }
            Image image = opener.open();
            if (a.warnIfProbedRaw() && format == null && !session.imageOpts() && !a.readOnly()
                    && image.format().equals("raw")) {
                Arguments.warnProbedRaw(session, name);
            }
            return new OpenedImage(image, io);
        } catch (IOException | RuntimeException e) {
            throw OpenFailures.cantOpenDevice(session, name, e);
        }
    }
}
