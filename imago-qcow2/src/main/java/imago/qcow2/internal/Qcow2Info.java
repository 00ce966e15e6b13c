package imago.qcow2.internal;

import imago.api.spi.Dependency;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What {@code info} shows of a qcow2 layer beyond its size and mappings, and the files it names. */
final class Qcow2Info extends Qcow2Room {
    /** QEMU's metadata-preallocation guess, made on first use: null until then. */
    private volatile Boolean metadataPreallocated;

    Qcow2Info(Qcow2State st) {
        super(st);
    }

    List<Dependency> dependencies() {
        List<Dependency> out = new ArrayList<>(2);
        st.header.backingFile().filter(n -> !n.isEmpty())
                .ifPresent(n -> out.add(new Dependency.BackingFile(n, st.header.backingFormat().filter(f -> !f.isEmpty()))));
        // an external data file without a name (opened for metadata only) is not attached: its reads fail
        st.header.dataFile().filter(d -> st.header.hasDataFile()).ifPresent(d -> out.add(new Dependency.DataFile(d)));
        return List.copyOf(out);
    }

    /**
     * Whether data clusters may be holes of the file that read as zero, as QEMU (qcow2_detect_metadata_preallocation): when clearly more clusters have a
     * refcount than the file really occupies on disk, the metadata was preallocated, and data clusters
     * may be holes that read as zero. Decided once, on first use; when the storage cannot tell its
     * allocated size, or the refcounts cannot be read, the answer is no.
     */
    boolean mapsStorageHoles() {
        Boolean known = metadataPreallocated;
        if (known == null) {
            boolean guess;
            try {
                guess = detectMetadataPreallocation();
            } catch (IOException e) {
                guess = false;
            }
            metadataPreallocated = known = guess;
        }
        return known;
    }

    private boolean detectMetadataPreallocation() throws IOException {
        var allocated = storage.allocatedSize();
        if (allocated.isEmpty()) {
            return false;
        }
        long realClusters = allocated.getAsLong() / clusterSize;
        long threshold = Math.max(realClusters * 10 / 9, realClusters + 2);
        long endCluster = Qcow2Checks.divCeil(st.fileSize, clusterSize);
        int order = st.header.refcountOrder();
        int blockBits = clusterBits + 3 - order;
        long tableEntries = (long) st.header.refcountTableClusters() * clusterSize / 8;
        long count = 0;
        long loadedBlock = -1;
        byte[] block = new byte[clusterSize];
        ByteBuffer entry = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN);
        for (long i = 0; i < endCluster && count < threshold; i++) {
            long tableIndex = i >>> blockBits;
            if (tableIndex >= tableEntries) {
                break;
            }
            if (tableIndex != loadedBlock) {
                storage.read(entry.clear(), st.header.refcountTableOffset() + tableIndex * 8);
                long blockOffset = entry.getLong(0) & ~511L;
                if (blockOffset == 0) {
                    // a whole refblock's worth of clusters with refcount 0
                    i = ((tableIndex + 1) << blockBits) - 1;
                    continue;
                }
                if ((blockOffset & (clusterSize - 1)) != 0 || blockOffset < 0 || blockOffset >= st.fileSize) {
                    return false;
                }
                storage.read(ByteBuffer.wrap(block), blockOffset);
                loadedBlock = tableIndex;
            }
            int index = (int) (i & ((1L << blockBits) - 1));
            if (refcountNonZero(block, index, order)) {
                count++;
            }
        }
        return count >= threshold;
    }

    /** Whether entry {@code index} of a refblock with {@code 1 << order}-bit entries is non-zero. */
    private static boolean refcountNonZero(byte[] block, int index, int order) {
        if (order < 3) {
            // sub-byte widths are packed from the low bit of each byte
            int bits = 1 << order;
            int perByte = 8 / bits;
            int shift = (index % perByte) * bits;
            return ((block[index / perByte] >>> shift) & ((1 << bits) - 1)) != 0;
        }
        int bytes = 1 << (order - 3);
        for (int k = 0; k < bytes; k++) {
            if (block[index * bytes + k] != 0) {
                return true;
            }
        }
        return false;
    }

    Map<String, Object> formatSpecific() {
        Map<String, Object> m = new LinkedHashMap<>();
        boolean v3 = st.header.version() >= 3;
        m.put("compat", v3 ? "1.1" : "0.10");
        m.put("compression-type", st.header.compressionType() == 1 ? "zstd" : "zlib");
        if (v3) {
            m.put("lazy-refcounts", st.header.lazyRefcounts());
        }
        List<Qcow2Bitmaps.Bitmap> listed = st.tracker != null ? st.tracker.current() : st.bitmaps;
        if (!listed.isEmpty()) {
            m.put("bitmaps", listed.stream().map(Qcow2Bitmaps.Bitmap::info).toList());
        }
        m.put("refcount-bits", 1 << st.header.refcountOrder());
        Qcow2Crypto crypto = st.crypto;
        if (crypto != null) {
            m.put("encrypt", crypto.info());
        }
        if (st.header.hasDataFile()) {
            st.header.dataFile().ifPresent(d -> m.put("data-file", d));
            m.put("data-file-raw", st.header.dataFileRaw());
        }
        if (v3) {
            m.put("corrupt", st.header.corrupt());
            m.put("extended-l2", st.header.extendedL2());
        }
        return m;
    }
}
