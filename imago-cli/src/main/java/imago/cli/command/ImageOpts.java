package imago.cli.command;

import imago.cli.text.QemuOpts;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A file argument given with qemu-img's {@code --image-opts}: {@code driver=FMT,file.filename=PATH} and driver
 * options such as {@code key-secret=ID}, as QEMU's option syntax (a doubled comma is a comma). Only what the user
 * types is parsed so; names stored inside images never are.
 *
 * @param driver the format, or {@code null} to probe
 * @param filename the file
 * @param options the driver options, in the order given
 */
record ImageOpts(String driver, String filename, Map<String, String> options) {

    /** Parses {@code text}. */
    static ImageOpts parse(String text) {
        Map<String, String> o;
        try {
            o = new LinkedHashMap<>(QemuOpts.parse(List.of(text)));
        } catch (IllegalArgumentException e) {
            throw new CliException(null, e.getMessage());
        }
        String driver = o.remove("driver");
        String filename = o.remove("file.filename");
        String fileDriver = o.remove("file.driver");
        if (fileDriver != null && !fileDriver.equals("file")) {
            throw new CliException(null, "--image-opts: imago opens only files (file.driver=file), not '"
                    + fileDriver + "'");
        }
        if (filename == null) {
            throw new CliException(null, "--image-opts: the file must be given as file.filename=PATH");
        }
        for (String k : o.keySet()) {
            if (k.startsWith("file.")) {
                throw new CliException(null, "--image-opts: option '" + k + "' is not supported");
            }
        }
        return new ImageOpts(driver, filename, Map.copyOf(o));
    }
}
