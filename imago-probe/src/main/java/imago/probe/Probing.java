package imago.probe;

import imago.api.ImageException;
import imago.api.UnknownFormatException;
import imago.api.spi.Confidence;
import imago.api.spi.FormatDriver;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Probing: every installed driver is asked about the first bytes of a storage, each on its own read-only view, and
 * the strongest answer wins; a tie is an error, and a driver that throws says no.
 */
final class Probing {
    private Probing() {
    }

    /** The driver that won probing and how sure it was. */
    record Result(FormatDriver driver, Confidence confidence) {
    }

    /** The driver whose answer about {@code storage}'s first bytes is the strongest. */
    static Result probe(Plugins plugins, Storage storage) throws IOException {
        List<FormatDriver> drivers = plugins.drivers();
        long size = storage.size();
        int window = 0;
        for (FormatDriver d : drivers) {
            window = Math.max(window, Math.max(0, d.probeLength()));
        }
        ByteBuffer head = ByteBuffer.allocate((int) Math.min(window, size));
        storage.read(head, 0);
        head.flip();
        FormatDriver best = null;
        FormatDriver tie = null;
        Confidence bestConfidence = Confidence.NONE;
        for (FormatDriver d : drivers) {
            Confidence c = ask(d, head, size);
            // an empty file is no image of a format probed by its name (an empty x.dmg is raw): QEMU takes an empty
            // file as raw before it probes
            if (c == Confidence.NONE && size > 0 && named(d, storage.name())) {
                c = Confidence.NAMED;
            }
            if (c.compareTo(bestConfidence) > 0) {
                best = d;
                tie = null;
                bestConfidence = c;
            } else if (c != Confidence.NONE && c == bestConfidence) {
                tie = d;
            }
        }
        if (best == null) {
            throw new UnknownFormatException(storage.name(), "no installed format recognises the image",
                    plugins.formatNames());
        }
        if (tie != null) {
            throw new ImageException(storage.name(), "format is ambiguous: both '" + best.name() + "' and '"
                    + tie.name() + "' recognise the image; name the format explicitly");
        }
        return new Result(best, bestConfidence);
    }

    /** Whether the image's name ends with one of the driver's {@link FormatDriver#probedSuffixes()}. */
    private static boolean named(FormatDriver d, String name) {
        for (String suffix : d.probedSuffixes()) {
            if (name.length() > suffix.length() && name.endsWith(suffix)) {
                return true;
            }
        }
        return false;
    }

    /** One driver's answer on its own read-only view of the head; a throwing driver says no. */
    static Confidence ask(FormatDriver d, ByteBuffer head, long size) {
        ByteBuffer view = head.asReadOnlyBuffer();
        view.limit(Math.min(view.limit(), Math.max(0, d.probeLength())));
        try {
            Confidence c = d.probe(view, size);
            return c == null ? Confidence.NONE : c;
        } catch (RuntimeException e) {
            // logged as before the split, under the front door's name
            org.slf4j.LoggerFactory.getLogger("imago.probe.Imago").warn("format driver {} failed while probing: {}",
                    d.name(), e.toString());
            return Confidence.NONE;
        }
    }
}
