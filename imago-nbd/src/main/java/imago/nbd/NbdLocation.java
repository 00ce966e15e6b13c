package imago.nbd;

import imago.api.StorageLocation;
import imago.nbd.internal.client.NbdUri;

/**
 * Storage locations of NBD exports, for opening an export as an image ({@code Opener.location(...)}):
 * {@code nbd://HOST[:PORT]/EXPORT} (TCP, port 10809 by default) and {@code nbd+unix:///EXPORT?socket=PATH}, as the
 * NBD URI specification and libnbd write them.
 *
 * <pre>{@code
 * try (Image image = Imago.opener().location(NbdLocation.of("nbd+unix:///disk?socket=/run/disk.sock")).open()) {
 *     ...
 * }
 * }</pre>
 *
 * <p>Make these locations only from what a user typed or configured: a name stored inside an image is never parsed
 * as a URI (the export's storage resolves no stored name, so an image on an export opens no backing file).
 */
public final class NbdLocation {
    private NbdLocation() {
    }

    /** Whether {@code text} uses one of the NBD URI schemes ({@code nbd}, {@code nbd+unix}, {@code nbds...}). */
    public static boolean isUri(String text) {
        return NbdUri.isNbd(text);
    }

    /**
     * The location of the export {@code uri} names.
     *
     * @throws IllegalArgumentException if {@code uri} is not an NBD URI, saying what is wrong with it
     */
    public static StorageLocation of(String uri) {
        return NbdUri.parse(uri).location();
    }
}
