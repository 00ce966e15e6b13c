package imago.cli.io;

import java.util.Map;

/**
 * How qemu-io is asked to open an image, on its command line or with its {@code open} command.
 *
 * @param name the image's name as the user typed it, or {@code null} when {@code options} name the file
 *     ({@code file.filename=...})
 * @param options the block options ({@code driver=qcow2}, {@code file.filename=...}, driver options), in order
 * @param readOnly {@code -r}
 * @param snapshot {@code -s}: writes go to a temporary overlay
 * @param copyOnRead {@code -C}
 * @param cache the cache mode ({@code -t}, {@code -n})
 * @param aio the AIO mode ({@code -i}, {@code -k})
 * @param discard the discard mode ({@code -d})
 * @param forceShare {@code -U}: open without taking the image's lock
 * @param warnIfProbedRaw whether to warn that a probed raw image restricts writes to its first sector, as QEMU
 *     does when it opens an image writable (but not when it reopens one)
 */
public record OpenArguments(String name, Map<String, String> options, boolean readOnly, boolean snapshot,
        boolean copyOnRead, String cache, String aio, String discard, boolean forceShare, boolean warnIfProbedRaw) {

    /** QEMU's cache modes ({@code off} is {@code none}). */
    public static final java.util.List<String> CACHE_MODES = java.util.List.of("none", "off", "directsync",
            "writethrough", "writeback", "unsafe");
    /** QEMU's AIO modes. */
    public static final java.util.List<String> AIO_MODES = java.util.List.of("threads", "native", "io_uring");

    /**
     * Refuses an unknown cache, AIO or discard mode, as qemu-io does before it opens anything.
     *
     * @throws IllegalArgumentException with qemu-io's message
     */
    public static void checkModes(String cache, String aio, String discard) {
        if (!CACHE_MODES.contains(cache)) {
            throw new IllegalArgumentException("Invalid cache option: " + cache);
        }
        if (!AIO_MODES.contains(aio)) {
            throw new IllegalArgumentException("Invalid aio option: " + aio);
        }
        unmaps(discard);
    }

    /** Whether discard mode {@code mode} passes discards on. @throws IllegalArgumentException for an unknown one */
    public static boolean unmaps(String mode) {
        return switch (mode) {
            case "unmap", "on" -> true;
            case "ignore", "off" -> false;
            default -> throw new IllegalArgumentException("Invalid discard option: " + mode);
        };
    }

    /** Freezes {@code options}, keeping its order. */
    public OpenArguments {
        options = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(options));
    }
}
