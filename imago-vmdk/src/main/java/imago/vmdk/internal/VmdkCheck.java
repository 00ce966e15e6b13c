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
            Problem p = firstProblem(extents.get(i));
            if (p != null) {
                long sector = (starts[i] + p.offset()) / VmdkDescriptor.SECTOR;
                if (p.noEntry()) {
                    // QEMU's lookup fails (VMDK_ERROR, -1: strerror gives EPERM's text)
                    messages.add("ERROR: could not get cluster_offset for sector " + sector);
                    failure = Optional.of("Operation not permitted");
                } else {
                    messages.add("ERROR: cluster offset for sector " + sector + " points after EOF");
                    failure = Optional.of("Invalid argument");
                }
            }
        }
        return new CheckReport(resource, "vmdk", 0, failure.isPresent() ? 1 : 0, 0, 0, 0, 0, 0, 0, 0, 0, messages,
                failure);
    }

    /** Where in an extent the check stops: a grain the directory has no entry for, or one past the file's end. */
    private record Problem(long offset, boolean noEntry) {
    }

    /** The first grain (or flat extent) that cannot be found or starts past the end of its file, or null. */
    private static Problem firstProblem(VmdkExtent extent) throws IOException {
        switch (extent) {
            case VmdkFlatExtent f -> {
                return f.start() >= f.storage().size() ? new Problem(0, false) : null;
            }
            case VmdkSparseExtent s -> {
                long fileSize = s.storage().size();
                VmdkGrainTables tables = s.tables();
                int grainBytes = s.layout().grainBytes();
                long grains = (s.size() + grainBytes - 1) / grainBytes;
                for (long g = 0; g < grains; g++) {
                    int table = (int) (g / tables.gtesPerGt());
                    if (table >= tables.tableCount()) {
                        return new Problem(g * grainBytes, true);
                    }
                    if (!tables.hasTable(table)) {
                        g = (table + 1L) * tables.gtesPerGt() - 1;
                        continue;
                    }
                    long e = tables.entry(g);
                    VmdkSparseExtent.Kind k = s.kind(e);
                    if ((k == VmdkSparseExtent.Kind.DATA || k == VmdkSparseExtent.Kind.COMPRESSED)
                            && e * VmdkDescriptor.SECTOR >= fileSize) {
                        return new Problem(g * grainBytes, false);
                    }
                }
                return null;
            }
            case VmdkSeSparseExtent s -> {
                long[] p = s.firstProblem();
                return p == null ? null : new Problem(p[0], p[1] == 1);
            }
            default -> {
                return null;
            }
        }
    }
}
