package imago.cli.io;

import imago.api.Image;
import java.io.IOException;

/** The image qemu-io's commands run on, if one is open, and how to open another. */
final class IoState {
    private final ImageOpener opener;
    private OpenedImage current;
    /** How the current image was opened, for {@code reopen}. */
    private OpenArguments openedWith;
    /** What the asynchronous requests that completed print, not yet printed, the latest first. */
    private final java.util.ArrayDeque<String> completions = new java.util.ArrayDeque<>();
    private final java.io.PrintStream out;

    /** @param out standard output, where completions are printed */
    IoState(ImageOpener opener, java.io.PrintStream out) {
        this.opener = opener;
        this.out = out;
    }

    /** Whether an image is open. */
    boolean isOpen() {
        return current != null;
    }

    /** The open image. @throws IllegalStateException if none is open */
    Image image() {
        if (current == null) {
            throw new IllegalStateException("no image is open");
        }
        return current.image();
    }

    /** What the open options change; the defaults when no image is open. */
    IoOptions options() {
        return current == null ? IoOptions.DEFAULTS : current.options();
    }

    /** How the open image was opened. */
    OpenArguments openedWith() {
        return openedWith;
    }

    /**
     * Keeps what an asynchronous request ({@code aio_read}, {@code aio_write}) prints when it completes, until
     * qemu-io would print it: at {@code aio_flush}, {@code sleep}, {@code close}, {@code reopen} or the end, where
     * its event loop runs. (imago runs the request itself at once, so that requests take effect in the order they
     * were made.)
     */
    void completed(String printed) {
        completions.push(printed);
    }

    /**
     * Prints what the completed asynchronous requests print, in the order qemu-io 7.2 most often prints them: on
     * vmdk in the order they were made (its driver runs one request at a time, each to its end, so they complete
     * in turn), on the other formats the latest first (QEMU's thread pool hands back the requests that finished
     * together from its newest).
     */
    void drain() {
        boolean inTurn = current != null && current.image().format().equals("vmdk");
        while (!completions.isEmpty()) {
            out.print(inTurn ? completions.removeLast() : completions.pop());
        }
    }

    /** Makes {@code image} the open one. */
    void set(OpenedImage image, OpenArguments arguments) {
        current = image;
        openedWith = arguments;
    }

    /** Opens an image as {@code arguments} say (nothing is open after a failure). @throws IOException as the opener */
    void open(OpenArguments arguments) throws IOException {
        set(opener.open(arguments), arguments);
    }

    /** Closes the open image, if any, once its requests completed. @throws IOException if closing it fails */
    void close() throws IOException {
        drain();
        OpenedImage c = current;
        current = null;
        openedWith = null;
        if (c != null) {
            c.close();
        }
    }
}
