package imago.cli;

import imago.api.BitmapInfo;
import imago.api.DirtyRun;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The persistent dirty bitmaps of a qcow2 file as the differential tests compare them: the bitmaps list
 * {@code qemu-img info} prints, the dirty extents of each consistent bitmap as imago reads them, and as qemu-nbd
 * exports them.
 */
final class BitmapState {

    private BitmapState() {
    }

    /** {@code qemu-img info}'s bitmaps list of {@code file}, as JSON text ({@code none} without bitmaps). */
    static String info(Path file) {
        String json = Qemu.ok(file.getParent(), Qemu.img(), "info", "--output=json", file);
        int at = json.indexOf("\"bitmaps\"");
        return at < 0 ? "none" : json.substring(at, json.indexOf(']', json.indexOf("\"granularity\"", at)) + 1);
    }

    /** Every consistent bitmap's dirty and clean runs, keyed by name, granularity and enabled flag. */
    static Map<String, List<DirtyRun>> dirtyRuns(Path file) throws IOException {
        Map<String, List<DirtyRun>> out = new LinkedHashMap<>();
        try (Image image = Imago.opener().path(file).format("qcow2").open()) {
            for (BitmapInfo b : image.bitmaps().list()) {
                if (!b.inUse()) {
                    out.put(b.name() + "/" + b.granularity() + "/" + b.enabled(),
                            image.bitmaps().runs(b.name(), 0, image.size()));
                }
            }
        }
        return out;
    }

    /** {@code nbdinfo --map=qemu:dirty-bitmap:BITMAP} of {@code file} served read-only by qemu-nbd. */
    static String nbdMap(Path file, String bitmap) {
        Qemu.tool("qemu-nbd");
        Qemu.tool("nbdinfo");
        // a socket of its own: a qemu-nbd that served the last client unlinks its socket as it exits
        Path dir = file.getParent();
        Path sock = dir.resolve("nbd-" + file.getFileName() + "-" + bitmap + ".sock");
        Qemu.ok(dir, "qemu-nbd", "--fork", "-r", "-k", sock, "-B", bitmap, "-f", "qcow2", file);
        return Qemu.ok(dir, "nbdinfo", "--map=qemu:dirty-bitmap:" + bitmap, "nbd+unix:///?socket=" + sock);
    }
}
