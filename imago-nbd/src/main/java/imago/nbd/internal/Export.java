package imago.nbd.internal;

import imago.api.Image;
import imago.nbd.DetectZeroes;
import imago.nbd.TlsCredentials;
import java.util.List;
import java.util.Objects;

/**
 * One export and how it is served.
 *
 * @param image the image served (open; the server does not close it)
 * @param name the export's name
 * @param description a human-readable description, or {@code null}
 * @param readOnly whether clients may not write (also when the image itself is writable)
 * @param multiConn whether to advertise {@code NBD_FLAG_CAN_MULTI_CONN}
 * @param unmap whether trims free space ({@code --discard=unmap}); otherwise they are accepted and ignored
 * @param detectZeroes what writes of zeroes become
 * @param allocationDepth whether {@code qemu:allocation-depth} is offered
 * @param bitmaps the names of the image's dirty bitmaps offered as {@code qemu:dirty-bitmap:NAME}
 * @param tls the server's TLS credentials, or {@code null}: with them, clients must start TLS before anything else
 */
public record Export(Image image, String name, String description, boolean readOnly, boolean multiConn,
        boolean unmap, DetectZeroes detectZeroes, boolean allocationDepth, List<String> bitmaps, TlsCredentials tls) {


    /** Validates the fields. */
    public Export {
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(detectZeroes, "detectZeroes");
        bitmaps = List.copyOf(bitmaps);
        if (tls != null && tls.endpoint() != TlsCredentials.Endpoint.SERVER) {
            throw new IllegalArgumentException("Expected TLS credentials for a server endpoint");
        }
        if (name.length() > Nbd.MAX_STRING) {
            throw new IllegalArgumentException("export name longer than " + Nbd.MAX_STRING);
        }
    }

    /** The size clients see. */
    long size() {
        return image.size();
    }

    /** The transmission flags, for a client that did or did not negotiate structured replies. */
    int transmissionFlags(boolean structured) {
        int flags = Nbd.FLAG_HAS_FLAGS | Nbd.FLAG_SEND_FLUSH | Nbd.FLAG_SEND_FUA | Nbd.FLAG_SEND_CACHE;
        if (readOnly) {
            flags |= Nbd.FLAG_READ_ONLY;
        } else {
            flags |= Nbd.FLAG_SEND_TRIM | Nbd.FLAG_SEND_WRITE_ZEROES | Nbd.FLAG_SEND_FAST_ZERO;
        }
        if (structured) {
            flags |= Nbd.FLAG_SEND_DF;
        }
        if (multiConn) {
            flags |= Nbd.FLAG_CAN_MULTI_CONN;
        }
        return flags;
    }

    /** Every meta context this export offers, with its id. */
    List<MetaContext> contexts() {
        var all = new java.util.ArrayList<MetaContext>();
        all.add(new MetaContext.BaseAllocation());
        if (allocationDepth) {
            all.add(new MetaContext.AllocationDepth());
        }
        for (int i = 0; i < bitmaps.size(); i++) {
            all.add(new MetaContext.DirtyBitmap(MetaContext.FIRST_BITMAP_ID + i, bitmaps.get(i)));
        }
        return List.copyOf(all);
    }
}
