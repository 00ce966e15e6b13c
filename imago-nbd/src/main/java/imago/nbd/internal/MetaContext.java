package imago.nbd.internal;

import imago.api.DirtyRun;
import imago.api.Extent;
import imago.api.Image;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A meta context of {@code NBD_CMD_BLOCK_STATUS}: what a descriptor's flags mean for one export. Each has a
 * fixed id on the wire.
 */
sealed interface MetaContext {
    /** The id of the export's first dirty bitmap; the others follow. */
    int FIRST_BITMAP_ID = 2;

    /** The context's id on the wire. */
    int id();

    /** The context's name. */
    String name();

    /**
     * The flags of the bytes at {@code offset} and how far they hold, at most {@code maxLength}: {@code {length,
     * flags}}.
     *
     * @throws IOException if the image's metadata cannot be read
     */
    long[] status(Image image, long offset, long maxLength) throws IOException;

    /** {@code base:allocation}: holes ({@code NBD_STATE_HOLE}) and bytes that read as zero ({@code NBD_STATE_ZERO}). */
    record BaseAllocation() implements MetaContext {
        static final String NAME = "base:allocation";

        @Override
        public int id() {
            return 0;
        }

        @Override
        public String name() {
            return NAME;
        }

        @Override
        public long[] status(Image image, long offset, long maxLength) throws IOException {
            Extent e = image.extent(offset, maxLength);
            int flags = (e.data() ? 0 : Nbd.STATE_HOLE) | (e.zero() ? Nbd.STATE_ZERO : 0);
            return new long[] {e.length(), flags};
        }
    }

    /**
     * {@code qemu:allocation-depth}: 0 where no layer of the chain holds the bytes, else 1 for the top image, 2
     * for its backing image, and so on.
     */
    record AllocationDepth() implements MetaContext {
        static final String NAME = "qemu:allocation-depth";

        @Override
        public int id() {
            return 1;
        }

        @Override
        public String name() {
            return NAME;
        }

        @Override
        public long[] status(Image image, long offset, long maxLength) throws IOException {
            Extent e = image.extent(offset, maxLength);
            return new long[] {e.length(), e.present() ? e.depth() + 1 : 0};
        }
    }

    /** {@code qemu:dirty-bitmap:NAME}: {@code 1} where the bitmap is dirty. */
    record DirtyBitmap(int id, String bitmap) implements MetaContext {
        static final String PREFIX = "qemu:dirty-bitmap:";

        @Override
        public String name() {
            return PREFIX + bitmap;
        }

        @Override
        public long[] status(Image image, long offset, long maxLength) throws IOException {
            DirtyRun run = image.dirtyRun(bitmap, offset, maxLength);
            return new long[] {run.length(), run.dirty() ? Nbd.STATE_DIRTY : 0};
        }
    }

    /**
     * The contexts of {@code all} that {@code queries} name. Setting selects exact names only; listing also
     * takes an empty list (everything), a namespace ({@code base:}, {@code qemu:}) and the bitmap prefix
     * {@code qemu:dirty-bitmap:}.
     */
    static List<MetaContext> resolve(List<MetaContext> all, List<String> queries, boolean set) {
        if (queries.isEmpty()) {
            return set ? List.of() : all;
        }
        Set<MetaContext> chosen = new LinkedHashSet<>();
        for (String q : queries) {
            for (MetaContext c : all) {
                if (c.name().equals(q) || !set && matchesPrefix(c, q)) {
                    chosen.add(c);
                }
            }
        }
        return List.copyOf(new ArrayList<>(chosen));
    }

    private static boolean matchesPrefix(MetaContext c, String query) {
        return switch (query) {
            case "base:" -> c instanceof BaseAllocation;
            case "qemu:" -> c instanceof AllocationDepth || c instanceof DirtyBitmap;
            case DirtyBitmap.PREFIX -> c instanceof DirtyBitmap;
            default -> false;
        };
    }
}
