package imago.vmdk.internal;

import imago.api.CheckReport;
import imago.api.Feature;
import imago.api.Repair;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code qemu-img check} for vmdk, as QEMU 7.2's {@code vmdk_co_check} does it: every grain (every flat extent as a
 * whole) that the image maps to a place in a file must start inside that file; the first one that does not ends the
 * check ("ERROR: cluster offset for sector N points after EOF", then "Check failed: Invalid argument"). There is
 * no repair.
 */
final class VmdkCheck {
    private VmdkCheck() {
    }

    /**
     * Checks {@code extents}, laid out from the guest offsets {@code starts}.
     *
     * @throws UnsupportedFeatureException for a repair: QEMU's vmdk has none
     * @throws IOException if a storage cannot be read
     */
    static CheckReport check(String resource, List<VmdkExtent> extents, long[] starts, Repair repair)
            throws IOException {
        if (repair != Repair.NONE) {
            throw new UnsupportedFeatureException(resource, Feature.CHECK, "vmdk repair",
                    "This image format does not support checks");
        }
        List<String> messages = new ArrayList<>();
        Optional<String> failure = Optional.empty();
        for (int i = 0; i < extents.size() && failure.isEmpty(); i++) {
            long bad = firstPastEnd(extents.get(i));
            if (bad >= 0) {
                messages.add("ERROR: cluster offset for sector " + (starts[i] + bad) / VmdkDescriptor.SECTOR
                        + " points after EOF");
                failure = Optional.of("Invalid argument");
            }
        }
        return new CheckReport(resource, "vmdk", 0, failure.isPresent() ? 1 : 0, 0, 0, 0, 0, 0, 0, 0, 0, messages,
                failure);
    }

    /** The extent offset of the first grain (or flat extent) that starts past the end of its file, or -1. */
    private static long firstPastEnd(VmdkExtent extent) throws IOException {
        switch (extent) {
            case VmdkFlatExtent f -> {
                return f.start() >= f.storage().size() ? 0 : -1;
            }
            case VmdkSparseExtent s -> {
                long fileSize = s.storage().size();
                VmdkGrainTables tables = s.tables();
                int grainBytes = s.layout().grainBytes();
                long grains = (s.size() + grainBytes - 1) / grainBytes;
                for (long g = 0; g < grains; g++) {
                    int table = (int) (g / tables.gtesPerGt());
                    if (!tables.hasTable(table)) {
                        g = (table + 1L) * tables.gtesPerGt() - 1;
                        continue;
                    }
                    long e = tables.entry(g);
                    VmdkSparseExtent.Kind k = s.kind(e);
                    if ((k == VmdkSparseExtent.Kind.DATA || k == VmdkSparseExtent.Kind.COMPRESSED)
                            && e * VmdkDescriptor.SECTOR >= fileSize) {
                        return g * grainBytes;
                    }
                }
                return -1;
            }
            default -> {
                return -1;
            }
        }
    }
}
