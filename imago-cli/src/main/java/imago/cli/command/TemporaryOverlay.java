package imago.cli.command;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.nbd.NbdLocation;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * QEMU's {@code snapshot=on} ({@code qemu-io -s}, {@code qemu-nbd -s}): a temporary qcow2 overlay backed by the
 * image the user named (opened read-only, as its backing file) takes every write, and is deleted when closed, so the
 * image is left as it was.
 */
final class TemporaryOverlay implements AutoCloseable {
    private final Path file;
    private final Image image;

    private TemporaryOverlay(Path file, Image image) {
        this.file = file;
        this.image = image;
    }

    /**
     * Creates the overlay of {@code typed} (probed unless {@code format} says) and opens it writable.
     *
     * @param prefix the temporary file's name prefix
     * @throws IOException if the image cannot be opened or the overlay made
     */
    static TemporaryOverlay open(Session session, String typed, String format, String prefix, boolean lock,
            boolean directIO) throws IOException {
        if (NbdLocation.isUri(typed)) {
            throw new CliException(typed, "a temporary overlay (-s) needs an image file, not an NBD export");
        }
        if (session.imageOpts() && !session.imageOpts(typed).options().isEmpty()) {
            // the overlay's backing file is opened by its name alone: the format's options would be lost
            throw new CliException(null, "--image-opts: a temporary overlay (-s) over an image opened with format "
                    + "options is not supported");
        }
        Path path = Path.of(session.fileName(typed));
        String backingFormat;
        long size;
        try (Image image = session.opener(typed, format).lock(lock).open()) {
            backingFormat = image.format();
            size = image.size();
        }
        Path overlay = Files.createTempFile(prefix, ".qcow2");
        try {
            Imago.create(overlay, "qcow2", CreateOptions.builder().size(size)
                    .backingFile(path.toAbsolutePath().toString()).backingFormat(backingFormat).build());
            Image image = Imago.opener().path(overlay).format("qcow2").writable(true).backingFile(path, backingFormat)
                    .gate(session.openGate(path)).lock(lock).directIO(directIO).noSync(true).open();
            return new TemporaryOverlay(overlay, image);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(overlay);
            throw e;
        }
    }

    /** The overlay, writable, over the image. */
    Image image() {
        return image;
    }

    /** Closes the overlay and deletes it. */
    @Override
    public void close() throws IOException {
        try {
            image.close();
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
