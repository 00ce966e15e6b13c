package imago.cli.command;

import imago.api.Image;
import java.io.IOException;

/**
 * {@code convert --bitmaps}: the persistent dirty bitmaps of the first source go to the target, as qemu-img copies
 * them (qcow2 to qcow2).
 */
final class ConvertBitmaps {

    private ConvertBitmaps() {
    }

    /** Whether {@code image} can hold persistent bitmaps: qcow2 version 3, as in QEMU. */
    static boolean supported(Image image) throws IOException {
        return image.format().equals("qcow2") && "1.1".equals(image.info().formatSpecific().get("compat"));
    }

    /**
     * qemu-img's checks of the source before anything is created.
     *
     * @throws CliException if the source's format has no persistent bitmaps
     */
    static void checkSource(Image source, boolean skipBroken) throws IOException {
        if (!supported(source)) {
            throw new CliException(null, "Source lacks bitmap support");
        }
    }

    /**
     * Copies the bitmaps.
     *
     * @throws CliException if the source has bitmaps: imago cannot write them into a new image yet
     */
    static void copy(Image source, Image target, boolean skipBroken) throws IOException {
        if (!source.dirtyBitmaps().isEmpty()) {
            throw new CliException(null, "--bitmaps: copying persistent bitmaps is not supported yet");
        }
    }
}
