package imago.cli.command;

import imago.cli.text.Json;
import imago.cli.text.QemuOpts;
import imago.cli.text.Sizes;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A file argument given with qemu-img's {@code --image-opts}: {@code driver=FMT,file.filename=PATH} and driver
 * options such as {@code key-secret=ID}, as QEMU's option syntax (a doubled comma is a comma). Only what the user
 * types is parsed so; names stored inside images never are.
 *
 * <p>No option is ignored: QEMU's block-layer options are checked here as QEMU checks them and either kept (where
 * imago behaves alike: {@code node-name}, {@code read-only}, {@code force-share} on a read-only open), handed to the
 * library, which honours them ({@code cache.direct}, {@code cache.no-flush}, {@code detect-zeroes},
 * {@code file.locking}, {@code file.aio}: see {@code Opener.option}), or refused; the format's own options go to the
 * library, which refuses those the format does not take in QEMU's words
 * ({@code Block format 'raw' does not support the option 'foo'}).
 *
 * @param driver the format, or {@code null} to probe
 * @param filename the file
 * @param options the options for the library (the format's and the block layer's it honours), in the order given
 *     (sizes as decimal numbers of bytes)
 * @param typed the format's options as typed (for the image's name)
 * @param writeRefusal why an open for writing is refused ({@code read-only=on}, {@code force-share=on}), or
 *     {@code null}
 * @param discard QEMU's {@code discard} mode as given ({@code ignore}, {@code off}, {@code unmap}, {@code on}), or
 *     {@code null}: qemu-io's discard requests follow it; qemu-img's commands only ever change the host file's
 *     allocation with it, never what the image reads
 */
record ImageOpts(String driver, String filename, Map<String, String> options, Map<String, String> typed,
        String writeRefusal, String discard) {
    /** Per format, the options that make qemu name an image by its options (QEMU's "strong" runtime options). */
    private static final Map<String, List<String>> NAMING_OPTIONS = Map.of("luks", List.of("key-secret"),
            "qcow2", List.of("encrypt.key-secret"), "raw", List.of("offset", "size"));
    /** QEMU's keys that sort before {@code driver} in its {@code json:} names (the order of its hash table). */
    private static final Set<String> BEFORE_DRIVER = Set.of("offset");
    /** Format options whose values are sizes ({@code qemu_strtosz}): raw's window, qcow2's caches. */
    private static final Set<String> SIZES = Set.of("offset", "size", "l2-cache-size", "cache-size");
    /** QEMU 7.2's file protocol options: those not in {@link #LIBRARY_FILE_OPTIONS} are refused in imago's words. */
    private static final Set<String> FILE_OPTIONS = Set.of("aio", "aio-max-batch", "locking", "pr-manager",
            "x-check-cache-dropped", "drop-cache", "node-name", "read-only", "auto-read-only", "force-share",
            "cache.direct", "cache.no-flush", "discard", "detect-zeroes");
    /** The file protocol's options that imago's library takes as QEMU does ({@code Opener.option}). */
    private static final Set<String> LIBRARY_FILE_OPTIONS = Set.of("aio", "locking", "cache.direct", "cache.no-flush");
    private static final Set<String> ON = Set.of("on", "yes", "true", "y");
    private static final Set<String> OFF = Set.of("off", "no", "false", "n");
    /** QEMU's {@code id_wellformed}: a letter, then letters, digits, '-', '.' and '_'. */
    private static final Pattern NODE_NAME = Pattern.compile("[A-Za-z][A-Za-z0-9._-]*");

    /**
     * Parses {@code text}.
     *
     * @throws CliException with qemu-img's words ({@code Could not open 'TEXT': reason}) for an option QEMU refuses
     *     before the format opens, or imago's for one QEMU takes and imago does not
     */
    static ImageOpts parse(String text) {
        return parse(text, false);
    }

    /**
     * Parses {@code text} for a tool that discards by default ({@code unmaps}: qemu-io unless {@code -d} says
     * otherwise, qemu-nbd with {@code --discard=unmap}, convert's target), which allows {@code detect-zeroes=unmap}
     * without a {@code discard} option, as QEMU's open flags do.
     *
     * @throws CliException as {@link #parse(String)}
     */
    static ImageOpts parse(String text, boolean unmaps) {
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
        try {
            return of(driver, filename, o, unmaps);
        } catch (IllegalArgumentException e) {
            throw refused(text, e.getMessage());
        }
    }

    /**
     * The options {@code given} for an image (an option string's, less {@code driver} and the file's name, or
     * qemu-io's {@code open -o}), checked; {@code unmaps}: as for {@link #parse(String, boolean)}.
     *
     * @throws IllegalArgumentException with QEMU's reason for an option QEMU refuses before the format opens
     * @throws CliException with imago's words for one QEMU takes and imago does not
     */
    static ImageOpts of(String driver, String filename, Map<String, String> given, boolean unmaps) {
        Map<String, String> o = new LinkedHashMap<>(given);
        for (String k : o.keySet()) {
            if (k.startsWith("file.")) {
                String name = k.substring("file.".length());
                if (!FILE_OPTIONS.contains(name)) {
                    throw new IllegalArgumentException("Block protocol 'file' doesn't support the option '" + name
                            + "'");
                }
                if (!LIBRARY_FILE_OPTIONS.contains(name)) {
                    throw new CliException(null, "--image-opts: option '" + k + "' is not supported");
                }
            }
        }
        if (o.containsKey("snapshot")) {
            // imago's library takes an internal snapshot so (Opener.snapshot); QEMU's formats take no such option
            if (driver == null) {
                throw notSupported("snapshot");
            }
            throw new IllegalArgumentException("Block format '" + driver + "' does not support the option "
                    + "'snapshot'");
        }
        String discard = o.get("discard");
        String writeRefusal = generic(o, unmaps);
        Map<String, String> options = new LinkedHashMap<>(o);
        for (String k : SIZES) {
            String v = options.get(k);
            if (v != null) {
                try {
                    options.put(k, Sizes.parseUnsigned64(v).toString());
                } catch (Sizes.SizeException e) {
                    // left as typed: the format refuses the value in QEMU's words
                }
            }
        }
        return new ImageOpts(driver, filename, Map.copyOf(options), Map.copyOf(o), writeRefusal, discard);
    }

    /**
     * Checks QEMU's block-layer options in {@code o} as QEMU checks them and takes out those the CLI answers for (the
     * ones the library honours stay for it); answers why a writable open is to be refused, or {@code null}.
     */
    private static String generic(Map<String, String> o, boolean unmaps) {
        for (String k : List.of("read-only", "auto-read-only", "force-share", "cache.direct", "cache.no-flush",
                "file.cache.direct", "file.cache.no-flush")) {
            String v = o.get(k);
            if (v != null && !ON.contains(v) && !OFF.contains(v)) {
                // QEMU names the file's option as the file node knows it, without "file."
                throw new IllegalArgumentException("Parameter '" + k.replaceFirst("^file\\.", "") + "' expects 'on' or "
                        + "'off'");
            }
        }
        String nodeName = o.remove("node-name");
        if (nodeName != null && !NODE_NAME.matcher(nodeName).matches()) {
            throw new IllegalArgumentException("Invalid node-name: '" + nodeName + "'");
        }
        if (nodeName != null && nodeName.length() > 31) {
            throw new IllegalArgumentException("Node name too long");
        }
        String discard = o.remove("discard");
        if (discard != null && !List.of("ignore", "off", "unmap", "on").contains(discard)) {
            throw new IllegalArgumentException("Invalid discard option");
        }
        // detect-zeroes, the cache modes, file.locking and file.aio stay for the library, which honours them
        String detectZeroes = o.get("detect-zeroes");
        if (detectZeroes != null && !List.of("off", "on", "unmap").contains(detectZeroes)) {
            throw new IllegalArgumentException("invalid parameter value: " + detectZeroes);
        }
        boolean unmap = discard != null ? discard.equals("unmap") || discard.equals("on") : unmaps;
        if ("unmap".equals(detectZeroes) && !unmap) {
            throw new IllegalArgumentException("setting detect-zeroes to unmap is not allowed without setting discard "
                    + "operation to unmap");
        }
        o.remove("auto-read-only"); // only lets QEMU fall back to read-only where a read-write open fails
        String readOnly = o.remove("read-only");
        String forceShare = o.remove("force-share");
        boolean shared = forceShare != null && ON.contains(forceShare);
        if (shared && readOnly != null && OFF.contains(readOnly)) {
            throw new IllegalArgumentException("force-share=on can only be used with read-only images");
        }
        if (readOnly != null && ON.contains(readOnly)) {
            return "Block node is read-only";
        }
        // force-share only lifts QEMU's image locks, which a read-only open of imago's takes shared anyway
        return shared ? "force-share=on can only be used with read-only images" : null;
    }

    private static CliException refused(String text, String reason) {
        return new CliException(null, "Could not open '" + text + "': " + reason);
    }

    private static CliException notSupported(String option) {
        return new CliException(null, "--image-opts: option '" + option + "' is not supported");
    }

    /**
     * The name qemu-img shows for the image opened with these options in format {@code format} (the driver given,
     * or the one probed): the file's name, unless an option is given that changes what is read from it (luks'
     * {@code key-secret}, qcow2's {@code encrypt.key-secret}, raw's {@code offset} and {@code size}; in qemu also
     * qcow's {@code encrypt.key-secret}, which imago does not take); then no file name says what is opened, and qemu
     * names it by its options, {@code json:} and
     * <code>{"driver": FORMAT, OPTION: VALUE..., "file": {"driver": "file", "filename": FILE}}</code> on one line, the
     * values as typed, in the order of QEMU's hash table (raw's {@code offset} before {@code driver}).
     */
    String shownName(String format) {
        Map<String, Object> json = new LinkedHashMap<>();
        List<String> naming = NAMING_OPTIONS.getOrDefault(format, List.of());
        for (String option : naming) {
            if (BEFORE_DRIVER.contains(option) && typed.containsKey(option)) {
                json.put(option, typed.get(option)); // as typed: qemu keeps an option string's values as strings
            }
        }
        json.put("driver", format);
        for (String option : naming) {
            if (!BEFORE_DRIVER.contains(option) && typed.containsKey(option)) {
                json.put(option, typed.get(option));
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
