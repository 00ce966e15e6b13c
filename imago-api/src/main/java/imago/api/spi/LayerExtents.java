package imago.api.spi;

import imago.api.Extent;
import imago.api.Image;
import imago.api.Mapping;
import java.io.IOException;

/**
 * Queries of a layer's mappings: the mapping at an offset, checked against the contract drivers keep, and the same
 * as {@code qemu-img map} shows it, an {@link Extent}, with the backing chain below.
 */
final class LayerExtents {
    private final FormatInstance layer;
    private final Image backing;
    private final LayerContract contract;

    /** {@code backing} may be null. */
    LayerExtents(FormatInstance layer, Image backing, LayerContract contract) {
        this.layer = layer;
        this.backing = backing;
        this.contract = contract;
    }

    /** The layer's mapping at {@code offset}, at most {@code maxLength} bytes and never past the end. */
    Mapping mapping(long offset, long maxLength) throws IOException {
        contract.checkQuery(offset, maxLength);
        long len = Math.min(maxLength, layer.size() - offset);
        return contract.checked(layer.mapping(offset, len), offset, len);
    }

    /** The extent at {@code offset}, at most {@code maxLength} bytes, as {@code qemu-img map} shows it. */
    Extent extent(long offset, long maxLength) throws IOException {
        if (!layer.reportsBlockStatus()) {
            // QEMU's answer for a driver without block status: the whole range is data, with no host offset
            contract.checkQuery(offset, maxLength);
            return Extent.compressed(offset, Math.min(maxLength, layer.size() - offset));
        }
        return of(mapping(offset, maxLength), offset);
    }

    /** The extent that mapping {@code m} of the guest range at {@code offset} shows. */
    Extent of(Mapping m, long offset) throws IOException {
        long n = m.length();
        // instanceof tests, not a pattern switch over the sealed Mapping: a pattern switch's bootstrap spins a
        // class when it first runs, which no AOT cache of JDK 25 keeps (~1-3 ms of every map command)
        if (m instanceof Mapping.Data d) {
            return layer.mapsStorageHoles() ? dataExtent(d, offset, n)
                    : Extent.data(offset, n, d.hostOffset(), d.storage().name());
        }
        if (m instanceof Mapping.Zero z) {
            return z.reserved() ? Extent.zero(offset, n, z.hostOffset(), z.storage().name()) : Extent.zero(offset, n);
        }
        if (m instanceof Mapping.Special) {
            return Extent.compressed(offset, n);
        }
        if (m instanceof Mapping.Unallocated u) {
            if (backing == null || offset >= backing.size()) {
                // QEMU: nothing below, so the bytes read as zero, and no layer holds them; host
                // space set aside for them is still shown
                return u.reserved() ? Extent.absent(offset, n, u.hostOffset(), u.storage().name())
                        : Extent.absent(offset, n);
            }
            return backing.extent(offset, Math.min(n, backing.size() - offset)).deeper(1);
        }
        throw new IllegalStateException("unreachable: " + m); // EndOfImage, which callers stop at
    }

    /**
     * A data mapping of a layer that {@link FormatInstance#mapsStorageHoles() maps storage holes}, as
     * {@code qemu-img map} shows it: the extent is cut at the storage's data/hole boundary and marked
     * zero where the storage has a hole; past the end of the storage everything reads as zero.
     */
    private static Extent dataExtent(Mapping.Data d, long offset, long n) throws IOException {
        Storage s = d.storage();
        long host = d.hostOffset();
        boolean zero;
        long length = n;
        if (host >= s.size()) {
            zero = true;
        } else {
            StorageExtent se = s.dataExtent(host, n);
            length = Math.min(n, se.length());
            zero = !se.data();
        }
        return zero ? Extent.dataInHole(offset, length, host, s.name()) : Extent.data(offset, length, host, s.name());
    }
}
