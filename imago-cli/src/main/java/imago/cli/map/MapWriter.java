package imago.cli.map;

import imago.api.Extent;
import imago.api.Image;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Locale;
import java.util.function.Function;

/**
 * {@code qemu-img map} (QEMU 7.2): walks {@link Image#extent} from a start offset to an end, merges
 * neighbours that {@link Extent#mergeableWith} allows, and prints each run as soon as the next one
 * differs, so that memory stays constant however large and fragmented the image is.
 */
public final class MapWriter {
    /** The two output forms. */
    public enum Format {
        /** The table of data extents ({@code Offset Length Mapped to File}). */
        HUMAN,
        /** One JSON object per extent, the whole an array. */
        JSON
    }

    /** A run that the human form cannot show: data without a host offset. */
    public static final class UnmappableException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UnmappableException() {
            super("File contains external, encrypted or compressed clusters.");
        }
    }

    private final Image image;
    private final PrintStream out;
    private final Format format;
    private final Function<Extent, String> displayName;

    /**
     * @param image the image to map
     * @param out where the output goes
     * @param format which output form
     * @param displayName how the storage of an extent that has one ({@link Extent#file}) is named in the
     *        human form
     */
    public MapWriter(Image image, PrintStream out, Format format, Function<Extent, String> displayName) {
        this.image = image;
        this.out = out;
        this.format = format;
        this.displayName = displayName;
    }

    /**
     * Prints the map of {@code [start, min(start + maxLength, size))}. A start at or past the end prints
     * one empty extent in JSON, as qemu-img does.
     *
     * @param start first guest byte
     * @param maxLength how many bytes at most, or a negative number for all up to the end
     * @throws IOException if metadata cannot be read (what was already printed stays printed)
     * @throws UnmappableException in the human form, for data that has no host offset
     */
    public void write(long start, long maxLength) throws IOException {
        long end = image.size();
        if (maxLength >= 0) {
            long limit = start + maxLength;
            end = Math.min(limit < 0 ? Long.MAX_VALUE : limit, end);
        }
        if (format == Format.HUMAN) {
            out.print(String.format(Locale.ROOT, "%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File"));
        } else {
            out.print('[');
        }
        // curr == null is qemu's empty entry at curr.start = start
        Extent curr = null;
        long pos = start;
        while (pos < end) {
            Extent next = image.extent(pos, end - pos);
            pos += next.length();
            if (curr != null && curr.mergeableWith(next)) {
                curr = curr.merge(next);
                continue;
            }
            if (curr != null) {
                next = dump(curr, next);
            }
            curr = next;
        }
        if (curr == null) {
            if (format == Format.JSON) {
                out.print("{ \"start\": " + start + ", \"length\": 0, \"depth\": 0, \"present\": false, "
                        + "\"zero\": false, \"data\": false}");
            }
        } else {
            dump(curr, null);
        }
        if (format == Format.JSON) {
            out.print("]\n");
        }
    }

    /** Prints {@code e}; returns {@code next}, which the human form may change so that more runs merge. */
    private Extent dump(Extent e, Extent next) {
        if (format == Format.JSON) {
            StringBuilder sb = new StringBuilder(128);
            sb.append("{ \"start\": ").append(e.offset()).append(", \"length\": ").append(e.length())
                    .append(", \"depth\": ").append(e.depth()).append(", \"present\": ").append(e.present())
                    .append(", \"zero\": ").append(e.zero()).append(", \"data\": ").append(e.data());
            if (e.hostOffset().isPresent()) {
                sb.append(", \"offset\": ").append(e.hostOffset().getAsLong());
            }
            sb.append('}');
            if (next != null) {
                sb.append(",\n");
            }
            out.print(sb);
            return next;
        }
        if (e.data() && e.hostOffset().isEmpty()) {
            throw new UnmappableException();
        }
        if (e.data() && !e.zero()) {
            out.print(hex16(e.offset()) + hex16(e.length()) + hex16(e.hostOffset().orElse(0))
                    + (e.file().isPresent() ? displayName.apply(e) : "") + "\n");
        }
        // QEMU: "This format ignores the distinction between 0, ZERO and ZERO|DATA", so that more merge
        if (next != null && (!next.data() || next.zero())) {
            return new Extent(next.offset(), next.length(), next.depth(), next.present(), true, false,
                    next.compressed(), next.hostOffset(), next.file());
        }
        return next;
    }

    /** C's {@code %#-16" PRIx64}: {@code 0x} only before a non-zero value. */
    static String hex16(long v) {
        String s = v == 0 ? "0" : "0x" + Long.toHexString(v);
        return s.length() >= 16 ? s : s + " ".repeat(16 - s.length());
    }

}
