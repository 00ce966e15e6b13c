package imago.cli.command;

import imago.api.CreateOptions;
import imago.api.ImageLimitException;
import imago.probe.Imago;
import java.io.IOException;

/**
 * What qemu-img says when a new image is larger than its format or the file system allows (QEMU's EFBIG): {@code
 * create} replaces the driver's words with its own (bdrv_img_create), {@code convert} prints the driver's.
 */
final class SizeLimits {
    private SizeLimits() {
    }

    /** {@code create}'s words, with qemu-img's hint when the format has a cluster size. */
    static String create(String format, CreateOptions options) throws IOException {
        boolean clusters = Imago.formattingOptions(format, options, null).containsKey("cluster_size");
        return "The image size is too large for file format '" + format + "'"
                + (clusters ? " (try using a larger cluster size)" : "");
    }

    /** {@code convert}'s words: those of QEMU's driver or of its file layer (a file past the file system's limit). */
    static String convert(String format, ImageLimitException e) {
        if (e.detail().contains("(EFBIG:")) { // imago.storage.file's ftruncate, as QEMU's file layer words it
            return "Could not resize file: File too large";
        }
        if (format.equals("vpc")) {
            return "Disk size is too large, max size is 2040 GiB";
        }
        return e.detail();
    }
}
