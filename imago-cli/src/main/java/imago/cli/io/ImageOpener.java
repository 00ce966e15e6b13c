package imago.cli.io;

import java.io.IOException;

/** Opens the images qemu-io's {@code open} and {@code reopen} commands ask for. */
@FunctionalInterface
public interface ImageOpener {

    /**
     * Opens an image as {@code arguments} say.
     *
     * @throws IOException or a runtime exception if it cannot be opened; the message (after the program's name)
     *     is what qemu-io prints for that, e.g. {@code can't open device NAME: reason}
     */
    OpenedImage open(OpenArguments arguments) throws IOException;
}
