package imago.cli.command;

import imago.cli.text.Json;
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
    /** Per format, the options that make qemu name an image by its options (QEMU's "strong" runtime options). */
    private static final Map<String, List<String>> NAMING_OPTIONS = Map.of("luks", List.of("key-secret"),
            "qcow2", List.of("encrypt.key-secret"));

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

    /**
     * The name qemu-img shows for the image opened with these options in format {@code format} (the driver given,
     * or the one probed): the file's name, unless an option is given that changes what is read from it (luks'
     * {@code key-secret}, qcow2's {@code encrypt.key-secret}; in qemu also raw's {@code offset} and {@code size}
     * and qcow's {@code encrypt.key-secret}, which imago does not take); then no file name says what is opened, and qemu names it by its options, {@code json:} and
     * <code>{"driver": FORMAT, "file": {"driver": "file", "filename": FILE}, OPTION: VALUE...}</code> on one line.
     */
    String shownName(String format) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("driver", format);
        for (String option : NAMING_OPTIONS.getOrDefault(format, List.of())) {
            String value = options.get(option);
            if (value != null) {
                json.put(option, value); // as typed: qemu keeps an option string's values as strings
            }
        }
        if (json.size() == 1) {
            return filename;
        }
        Map<String, Object> file = new LinkedHashMap<>();
        file.put("driver", "file");
        file.put("filename", filename);
        json.put("file", file);
        return "json:" + Json.compact(json);
    }
}
