package imago.cli.command;

import imago.api.BitmapInfo;
import imago.api.Bitmaps;
import imago.api.Image;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Collectors;

/**
 * {@code convert --bitmaps}: qemu-img's checks of the sources and the target, and the copy of the first source's
 * persistent dirty bitmaps into the target once its data is copied, through the public {@link Bitmaps} API.
 *
 * <p>QEMU walks a source's bitmaps in the reverse of the order its bitmap directory lists them (it loads them each
 * at the head of a list), so its checks and warnings name them in that order; the target lists the copies after the
 * bitmaps it already had, in the source's order. A copy that fails leaves the ones QEMU made before it in place.
 */
final class ConvertBitmaps {

    private ConvertBitmaps() {
    }

    /** Whether {@code image} can hold persistent bitmaps: qcow2 version 3, as in QEMU. */
    static boolean supported(Image image) throws IOException {
        return image.format().equals("qcow2") && "1.1".equals(image.info().formatSpecific().get("compat"));
    }

    /**
     * qemu-img's checks of the sources before anything is created.
     *
     * @param program the name the command was invoked by, which qemu-img's hint names
     * @throws CliException if there are several sources, the source's format has no persistent bitmaps, or (without
     *     {@code skipBroken}) one of them is inconsistent
     */
    static void checkSources(List<Image> sources, boolean skipBroken, String program) throws IOException {
        if (sources.size() > 1) {
            throw new CliException(null, "Copying bitmaps only possible with single source");
        }
        Image source = sources.getFirst();
        if (!supported(source)) {
            throw new CliException(null, "Source lacks bitmap support");
        }
        if (skipBroken) {
            return;
        }
        for (BitmapInfo b : qemuOrder(source.bitmaps())) {
            if (b.inUse()) {
                throw new CliException(null, "Cannot copy inconsistent bitmap '" + b.name() + "'\nTry "
                        + "--skip-broken-bitmaps, or use '" + program + " bitmap --remove' to delete it");
            }
        }
    }

    /**
     * Copies the source's consistent bitmaps into {@code target}: each with its name, granularity and enabled flag,
     * and the source's dirty bits; an inconsistent one is left out with qemu-img's warning ({@code skipBroken}, else
     * {@link #checkSources} refused it).
     *
     * @param warn prints a warning line (after the program's name)
     * @throws CliException with qemu-img's words if a bitmap cannot be made or filled (a name the target already
     *     has, a target of another size); the copies made before it are kept, as qemu-img keeps them
     */
    static void copy(Image source, Image target, boolean skipBroken, Consumer<String> warn)
            throws IOException {
        Bitmaps from = source.bitmaps();
        Bitmaps to = target.bitmaps();
        Set<String> existing = to.list().stream().map(BitmapInfo::name).collect(Collectors.toSet());
        String sizes = from.size() == to.size() ? null : "Bitmaps are of different sizes (destination size is "
                + to.size() + ", source size is " + from.size() + ") and can't be merged";
        // QEMU's walk decides which bitmaps are made before the first failure; they are stored in the source's order
        List<BitmapInfo> made = new ArrayList<>();
        String failure = null;
        for (BitmapInfo b : qemuOrder(from)) {
            if (skipBroken && b.inUse()) {
                warn.accept("warning: Skipping inconsistent bitmap '" + b.name() + "'");
                continue;
            }
            if (existing.contains(b.name())) {
                failure = "Failed to create bitmap " + b.name() + ": Bitmap already exists: " + b.name();
                break;
            }
            if (sizes != null) {
                failure = "Failed to populate bitmap " + b.name() + ": " + sizes;
                break;
            }
            made.addFirst(b);
        }
        for (BitmapInfo b : made) {
            try {
                to.add(b.name(), b.granularity(), b.enabled());
            } catch (IllegalArgumentException | UnsupportedFeatureException e) {
                throw new CliException(null, "Failed to create bitmap " + b.name() + ": " + e.getMessage());
            }
            try {
                to.merge(b.name(), from, b.name());
            } catch (IllegalArgumentException | UnsupportedFeatureException e) {
                to.remove(b.name());
                throw new CliException(null, "Failed to populate bitmap " + b.name() + ": " + e.getMessage());
            }
        }
        if (failure != null) {
            throw new CliException(null, failure);
        }
    }

    /** The bitmaps in the order QEMU walks them: the reverse of the directory's. */
    private static List<BitmapInfo> qemuOrder(Bitmaps bitmaps) throws IOException {
        return bitmaps.list().reversed();
    }
}
