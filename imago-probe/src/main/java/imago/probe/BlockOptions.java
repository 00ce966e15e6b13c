package imago.probe;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * QEMU's block-layer options among an {@link Opener}'s options (see {@link Opener#option}), taken apart from the
 * format's: what they make of the opener's own settings, and the format's options left.
 *
 * @param formatOptions the options for the format driver
 * @param directIO whether the files are opened with O_DIRECT
 * @param noSync whether syncs to stable media are skipped
 * @param lockTop whether the top image's file is locked
 */
record BlockOptions(Map<String, String> formatOptions, boolean directIO, boolean noSync, boolean lockTop) {
    private static final Set<String> NAMES = Set.of("cache.direct", "cache.no-flush", "file.cache.direct",
            "file.cache.no-flush", "file.locking", "file.aio", "detect-zeroes");
    private static final Set<String> ON = Set.of("on", "yes", "true", "y");
    private static final Set<String> OFF = Set.of("off", "no", "false", "n");

    /**
     * Takes the block-layer options out of {@code options}, over the opener's {@code directIO}, {@code noSync} and
     * {@code lock}.
     *
     * @throws IllegalArgumentException for a value QEMU refuses, in its words
     */
    static BlockOptions take(Map<String, String> options, boolean directIO, boolean noSync, boolean lock) {
        Map<String, String> rest = new LinkedHashMap<>(options);
        rest.keySet().removeAll(NAMES);
        // the file node inherits the image's cache mode unless it is given its own, as in QEMU
        boolean direct = flag(options, "file.cache.direct", flag(options, "cache.direct", directIO));
        boolean unsafe = flag(options, "file.cache.no-flush", flag(options, "cache.no-flush", noSync));
        String locking = options.getOrDefault("file.locking", "auto");
        if (!Set.of("on", "off", "auto").contains(locking)) {
            throw new IllegalArgumentException("invalid parameter value: " + locking);
        }
        detectZeroes(options);
        // aio is how QEMU's file driver submits its requests (a thread pool, Linux AIO, io_uring): checked as QEMU
        // checks it, and taken without changing imago's I/O, which has one way of its own
        String aio = options.getOrDefault("file.aio", "threads");
        if (!Set.of("threads", "native", "io_uring").contains(aio)) {
            throw new IllegalArgumentException("invalid parameter value: " + aio);
        }
        if (aio.equals("native") && !direct) {
            throw new IllegalArgumentException("aio=native was specified, but it requires cache.direct=on, which was "
                    + "not specified.");
        }
        // auto is on where the host has open file description locks, which imago's file storage needs anyway
        return new BlockOptions(rest, direct, unsafe, lock && !locking.equals("off"));
    }

    /**
     * The {@code detect-zeroes} mode of {@code options}: {@code off} (the default), {@code on} or {@code unmap}.
     *
     * @throws IllegalArgumentException for another value, in QEMU's words
     */
    static String detectZeroes(Map<String, String> options) {
        String mode = options.getOrDefault("detect-zeroes", "off");
        if (!Set.of("off", "on", "unmap").contains(mode)) {
            throw new IllegalArgumentException("invalid parameter value: " + mode);
        }
        return mode;
    }

    private static boolean flag(Map<String, String> options, String name, boolean otherwise) {
        String value = options.get(name);
        if (value == null) {
            return otherwise;
        }
        if (ON.contains(value)) {
            return true;
        }
        if (OFF.contains(value)) {
            return false;
        }
        // QEMU names the file's option as the file node knows it, without "file."
        throw new IllegalArgumentException("Parameter '" + name.replaceFirst("^file\\.", "") + "' expects 'on' or "
                + "'off'");
    }
}
