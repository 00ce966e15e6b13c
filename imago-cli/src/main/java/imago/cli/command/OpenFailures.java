package imago.cli.command;

import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageInfo;
import imago.api.OpenDeniedException;
import imago.cli.info.InfoReport;
import imago.nbd.NbdLocation;
import imago.probe.Imago;
import imago.probe.Opener;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * qemu-img's wording for an image that cannot be opened: {@code Could not open 'NAME': reason}, where a failure in
 * the backing chain adds {@code Could not open backing file: } once per link down to the file that failed, named as
 * QEMU names it (its stored name relative to the directory of the image naming it).
 */
final class OpenFailures {
    /** The offset the library appends to a message about a damaged or foreign image; qemu-img names none. */
    private static final Pattern AT_OFFSET = Pattern.compile(" \\(at offset \\d+\\)$");

    private OpenFailures() {
    }

    /**
     * qemu's words for an internal snapshot that cannot be loaded ({@code -l SNAPSHOT} of measure and qemu-nbd):
     * {@code Failed to load snapshot: } and why (the format has no internal snapshots, or none of that id or name);
     * or {@code null} if {@code e} is not about the snapshot.
     */
    static CliException snapshotNotLoaded(Exception e) {
        if (e instanceof imago.api.UnsupportedFeatureException u
                && u.feature() == imago.api.Feature.INTERNAL_SNAPSHOTS) {
            return new CliException(null, "Failed to load snapshot: " + u.detail());
        }
        if (e instanceof imago.api.NoSuchSnapshotException) {
            return new CliException(null, "Failed to load snapshot: Can't find snapshot");
        }
        return null;
    }

    /**
     * Opens the image the user typed, turning a failure of the image or of its backing chain into qemu-img's
     * message.
     *
     * @param format the format the user gave ({@code -f}), or {@code null}
     * @throws CliException with qemu-img's words if the image or a file of its chain cannot be opened
     */
    static Image open(Session session, Opener opener, String typed, String format) throws IOException {
        try {
            return opener.open();
        } catch (IOException | IllegalArgumentException | UncheckedIOException e) {
            throw couldNotOpen(session, typed, format, e);
        }
    }

    /**
     * Opens the image the user typed with its backing chain, as {@code info --backing-chain} reports a failure:
     * QEMU opens each layer alone there, so the message is about the layer that failed, by QEMU's name for it.
     *
     * @throws CliException with qemu-img's words if a layer cannot be opened
     */
    static Image openEachLayer(Session session, Opener opener, String typed, String format) throws IOException {
        try {
            return opener.open();
        } catch (IOException | IllegalArgumentException | UncheckedIOException e) {
            throw couldNotOpen(session, typed, format, e, true);
        }
    }

    /**
     * Opens {@code typed}'s whole backing chain with {@code opener} and closes it again, as qemu-img check opens the
     * chain before it checks: a file of the chain that cannot be opened (or that the gate refuses) fails in qemu-img's
     * words. A failure of the image itself is left to the check, which opens what it can of a damaged image.
     *
     * @throws CliException with qemu-img's words if a backing file cannot be opened
     */
    static void requireBackingChain(Session session, Opener opener, String typed, String format) throws CliException {
        try (Image chain = opener.open()) {
            chain.size(); // opened: the chain is whole
        } catch (IOException | IllegalArgumentException | UncheckedIOException e) {
            Throwable t = unwrap(e);
            if (t instanceof OpenDeniedException || place(session, typed, format, t).filter(p -> p.depth() > 0)
                    .isPresent()) {
                throw couldNotOpen(session, typed, format, e);
            }
        }
    }

    /**
     * qemu-img's refusal of {@code typed}, an image of a format that imago only reads, where qemu-img opens it
     * read-write before anything else ({@code amend}, {@code commit}) and QEMU's driver refuses that.
     */
    static CliException readOnlyFormat(String typed) {
        return new CliException(null, "Could not open '" + typed + "': Image is read-only");
    }

    /** The message for {@code failure} while opening {@code typed}: {@code Could not open 'typed': reason}. */
    static CliException couldNotOpen(Session session, String typed, Throwable failure) {
        return couldNotOpen(session, typed, null, failure);
    }

    /**
     * The message for {@code failure} while opening {@code typed} (of {@code format}, or probed): about the file of
     * its backing chain that failed if the failure names one.
     */
    static CliException couldNotOpen(Session session, String typed, String format, Throwable failure) {
        return couldNotOpen(session, typed, format, failure, false);
    }

    private static CliException couldNotOpen(Session session, String typed, String format, Throwable failure,
            boolean layerAlone) {
        Throwable t = unwrap(failure);
        Optional<ChainPlace> place = place(session, typed, format, t);
        String name = layerAlone ? place.map(ChainPlace::shown).orElse(typed) : typed;
        String message = "Could not open '" + name + "': " + cause(session, typed, t, place, layerAlone);
        if (t instanceof ImageException e) {
            message = QemuReasons.printedFirst(e.detail()).map(first -> first + Session.NEXT_REPORT).orElse("")
                    + message;
        }
        return new CliException(null, message);
    }

    /**
     * Why {@code typed} (of {@code format}, or probed) could not be opened, as QEMU's open reports it before
     * qemu-img names the image: the reason, after {@code Could not open backing file: } once per link down to the
     * layer that failed.
     */
    static String cause(Session session, String typed, String format, Throwable failure) {
        Throwable t = unwrap(failure);
        return cause(session, typed, t, place(session, typed, format, t), false);
    }

    private static String cause(Session session, String typed, Throwable failure, Optional<ChainPlace> place,
            boolean layerAlone) {
        if (place.isEmpty() || place.get().depth() == 0) {
            return reason(session, typed, failure);
        }
        ChainPlace p = place.get();
        return (layerAlone ? "" : "Could not open backing file: ".repeat(p.depth())) + reason(session, p.shown(),
                failure);
    }

    /** Where in {@code typed}'s chain the file {@code failure} is about is, if it names a layer. */
    private static Optional<ChainPlace> place(Session session, String typed, String format, Throwable failure) {
        String failing = switch (failure) {
            case FileSystemException e -> e.getFile();
            case ImageException e -> e.resource();
            default -> null;
        };
        return failing == null || NbdLocation.isUri(typed) || session.imageOpts()
                ? Optional.empty() : place(session, typed, format, Path.of(failing));
    }

    private static Throwable unwrap(Throwable failure) {
        Throwable t = failure;
        while (t instanceof UncheckedIOException && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    /** Why {@code failure} kept the file QEMU would call {@code shown} from opening, without the file's name. */
    private static String reason(Session session, String shown, Throwable failure) {
        return switch (failure) {
            case NoSuchFileException e -> "Could not open '" + named(shown, e.getFile()) + "': No such file or directory";
            case AccessDeniedException e -> "Could not open '" + named(shown, e.getFile()) + "': Permission denied";
            case ImageException e -> QemuReasons.of(e.detail(), shown);
            default -> withoutResource(session, Errors.describe(failure, session, null));
        };
    }

    /**
     * The name QEMU gives {@code file} while opening the layer it calls {@code shown}: the layer's own name, or for a
     * file the layer names (not a backing file), vmdk's extent joined to the layer's directory as QEMU joins it, and
     * qcow2's external data file by its stored name.
     */
    private static String named(String shown, String file) {
        if (file == null) {
            return shown;
        }
        Path layer = Path.of(shown).toAbsolutePath().normalize();
        Path target = Path.of(file).toAbsolutePath().normalize();
        Path dir = layer.getParent();
        if (target.equals(layer) || dir == null || !target.startsWith(dir)) {
            return shown;
        }
        String relative = dir.relativize(target).toString();
        String format;
        try {
            format = Imago.probe(layer);
        } catch (IOException | RuntimeException e) {
            return shown;
        }
        Path shownDir = Path.of(shown).getParent();
        return !format.equals("vmdk") ? relative : shownDir == null ? relative : shownDir.resolve(relative).toString();
    }

    /** Where a file is in a backing chain: how many links below the top, and its name as QEMU shows it. */
    private record ChainPlace(int depth, String shown) {
    }

    /**
     * Finds {@code failing} in the backing chain of {@code typed}, opening each layer alone (as {@code info
     * --backing-chain} does), or nothing if it is not a layer of the chain (a data file, an extent).
     */
    private static Optional<ChainPlace> place(Session session, String typed, String format, Path failing) {
        Path target = failing.toAbsolutePath().normalize();
        String shown = typed;
        String layerFormat = format;
        for (int depth = 0; depth <= Opener.DEFAULT_MAX_CHAIN_DEPTH; depth++) {
            Path path = Path.of(shown);
            if (path.toAbsolutePath().normalize().equals(target)) {
                return Optional.of(new ChainPlace(depth, shown));
            }
            ImageInfo info;
            Opener o = Imago.opener().path(path).noBacking().lock(false).gate(session.openGate(path))
                    .secrets(session.secrets());
            if (layerFormat != null) {
                o.format(layerFormat);
            }
            try (Image layer = o.open()) {
                info = layer.info();
            } catch (IOException | RuntimeException e) {
                return Optional.empty();
            }
            if (info.backingFilename().isEmpty()) {
                return Optional.empty();
            }
            shown = InfoReport.combine(shown, info.backingFilename().get());
            layerFormat = info.backingFormat().orElse(null);
        }
        return Optional.empty();
    }

    /**
     * qemu-io's message for {@code failure} while opening {@code typed}: {@code can't open device typed: reason},
     * the reason as QEMU words it (without the library's file name and offset); for an option string ({@code
     * --image-opts}), which qemu-io opens without a device name, {@code can't open: reason}.
     */
    static CliException cantOpenDevice(Session session, String typed, Throwable failure) {
        String reason = switch (failure) {
            case CliException e -> e.getMessage();
            case NoSuchFileException e -> "Could not open '" + typed + "': No such file or directory";
            case AccessDeniedException e -> "Could not open '" + typed + "': Permission denied";
            case ImageException e when QemuReasons.readOnlyFormat(e.detail()) -> QemuReasons.of(e.detail(), typed);
            default -> withoutResource(session, Errors.describe(failure, session, null));
        };
        if (session.imageOpts()) {
            // qemu-io opens an option string without a device name: "can't open: reason"
            String prefix = "Could not open '" + typed + "': ";
            return new CliException(null, "can't open: " + (reason.startsWith(prefix)
                    ? reason.substring(prefix.length()) : reason));
        }
        return new CliException(null, "can't open device " + typed + ": " + reason);
    }

    /** {@code message} without a leading file name and a trailing offset. */
    private static String withoutResource(Session session, String message) {
        String m = AT_OFFSET.matcher(message).replaceFirst("");
        if (session.namesAFile(m)) {
            int colon = m.indexOf(": ");
            if (colon > 0) {
                m = m.substring(colon + 2);
            }
        }
        return m;
    }
}
