package imago.cli.command;

import java.util.List;

/**
 * A {@code convert} command line once {@link ConvertCommand} has checked it: what {@link ConvertJob} needs.
 *
 * @param files the sources, then the target
 * @param format the sources' format ({@code -f}), or {@code null} to probe each
 * @param outputFormat the target's format ({@code -O}, raw by default), or {@code null} to probe an existing target
 *     named by {@code --target-image-opts} without a driver
 * @param createOptions the new image's options ({@code -o}), as given (qemu-img parses them once the sources are open)
 * @param cache the target's cache mode ({@code -t}), not checked yet (qemu-img checks it after creating the target)
 * @param minSparse the zero block size ({@code -S}), 0 to write everything
 * @param threads how many chunks are copied at once ({@code -m})
 * @param rateLimit bytes per second ({@code -r}), 0 for no limit
 * @param backing the backing file ({@code -B}), or {@code null}
 * @param backingFormat its format ({@code -F}), or {@code null}
 * @param snapshot the first source's snapshot ({@code -l}, {@code -s}), or {@code null}
 * @param flags the on/off options
 */
record ConvertRequest(List<String> files, String format, String outputFormat, List<String> createOptions,
        String cache, int minSparse, int threads, long rateLimit, String backing, String backingFormat,
        String snapshot, Flags flags) {

    /**
     * The on/off options of {@code convert}.
     *
     * @param compress {@code -c}
     * @param outOfOrder {@code -W}
     * @param progress {@code -p}
     * @param quiet {@code -q}
     * @param forceShare {@code -U}
     * @param noCreate {@code -n}
     * @param targetIsZero {@code --target-is-zero}
     * @param targetImageOpts {@code --target-image-opts}
     * @param copyRange {@code -C}
     * @param salvage {@code --salvage}
     * @param bitmaps {@code --bitmaps}
     * @param skipBrokenBitmaps {@code --skip-broken-bitmaps}
     */
    record Flags(boolean compress, boolean outOfOrder, boolean progress, boolean quiet, boolean forceShare,
            boolean noCreate, boolean targetIsZero, boolean targetImageOpts, boolean copyRange, boolean salvage,
            boolean bitmaps, boolean skipBrokenBitmaps) {
    }

    /** The target as the user typed it. */
    String target() {
        return files.getLast();
    }
}
