package imago.vmdk.internal;

import imago.api.CorruptImageException;
import imago.api.spi.BackingFacts;
import java.util.Locale;

/**
 * Whether a delta disk's parent is still the image the delta was made from: the descriptor's {@code parentCID} must
 * equal the parent's {@code CID}, which changes on the parent's first change after each open. A parent that changed
 * (or is not a vmdk, so has no CID) makes every byte read from it suspect, so, as in QEMU, a read that falls through
 * to the parent and a write that allocates a grain (copying the rest of it from the parent) are refused; bytes the
 * delta holds itself stay readable, and {@code info} and {@code map} still work. Unlike QEMU, which answers
 * "Invalid argument", the refusal says which CIDs differ.
 */
final class VmdkParentCheck {
    private final String resource;
    private final long parentCid;
    /** Null while the parent matches (or before one is attached); otherwise why it does not. */
    private volatile String mismatch;

    VmdkParentCheck(String resource, long parentCid) {
        this.resource = resource;
        this.parentCid = parentCid;
    }

    /** Compares the parent the probe module opened with {@code parentCID}. */
    void check(BackingFacts parent) {
        if (!"vmdk".equals(parent.format())) {
            mismatch = "its parent is a " + parent.format() + " image, which has no CID to match parentCID "
                    + hex(parentCid);
        } else if (!(parent.formatSpecific().get("cid") instanceof Number cid) || cid.longValue() != parentCid) {
            Object found = parent.formatSpecific().get("cid");
            mismatch = "its parent changed after it was made: parentCID is " + hex(parentCid) + ", the parent's CID is "
                    + (found instanceof Number n ? hex(n.longValue()) : "missing");
        } else {
            mismatch = null;
        }
    }

    /**
     * Refuses an access that needs the parent's bytes when the parent does not match.
     *
     * @param what the access, for the message ("read", "write")
     * @param offset the guest offset of the access
     */
    void requireParent(String what, long offset) throws CorruptImageException {
        String why = mismatch;
        if (why != null) {
            throw new CorruptImageException(resource, offset, "cannot " + what + " through the parent image: " + why);
        }
    }

    private static String hex(long cid) {
        return String.format(Locale.ROOT, "%08x", cid);
    }
}
