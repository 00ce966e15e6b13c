package imago.cli.command;

import imago.api.Image;
import java.io.IOException;

/**
 * {@code convert --bitmaps}: qemu-img's checks of the source and the target. Copying the bitmaps themselves waits for
 * the qcow2 driver's bitmap writing API, so a source that has persistent bitmaps is refused (before anything is
 * created); one without them converts as without {@code --bitmaps}, as in qemu-img.
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
     * @throws CliException if the source's format has no persistent bitmaps, or it has some (imago cannot write
     *     them into the target yet)
     */
    static void checkSource(Image source) throws IOException {
        if (!supported(source)) {
            throw new CliException(null, "Source lacks bitmap support");
        }
        if (!source.dirtyBitmaps().isEmpty()) {
            throw new CliException(null, "--bitmaps: copying persistent bitmaps is not supported yet (the source has "
                    + String.join(", ", source.dirtyBitmaps()) + ")");
        }
    }
}
