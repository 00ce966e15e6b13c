package imago.cli.io;

import imago.api.Image;
import java.io.Closeable;
import java.io.IOException;

/**
 * An image qemu-io's commands run on: the image, what the options it was opened with change in how the commands
 * run, and what closing it must release (the image itself, or a temporary overlay with it).
 *
 * @param image the open image
 * @param options what qemu-io's open options change in how the commands run
 * @param resources closed by {@link #close()}: the image, and whatever was opened with it
 */
public record OpenedImage(Image image, IoOptions options, Closeable resources) implements Closeable {

    /** An image that is its own only resource. */
    public OpenedImage(Image image, IoOptions options) {
        this(image, options, image);
    }

    @Override
    public void close() throws IOException {
        resources.close();
    }
}
