package imago.qcow2.internal;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Writes a new, empty qcow2 image laid out as {@code qemu-img create} 7.2 lays it out: the header in
 * cluster 0, the refcount table in cluster 1, the first refcount block in cluster 2 and the L1 table
 * from cluster 3 (written only up to its last entry), followed, when the first refcount block does not cover
 * it, by the refcount blocks that do (and a larger refcount table if those need one), as QEMU places them.
 */
final class Qcow2Create {
    /** QEMU's BDRV_MAX_LENGTH: INT64_MAX rounded down to 1 GiB, the largest image its block layer takes. */
    private static final long MAX_LENGTH = Long.MAX_VALUE & -(1L << 30);

    private Qcow2Create() {
    }

    /**
     * Writes a new image for {@code options} to the empty {@code storage}.
     *
     * @throws IllegalArgumentException if an option is unknown or invalid (qemu-img's messages)
     * @throws UnsupportedFeatureException for preallocation with an external data file (which needs the created
     *         data file: see the three-argument form)
     * @throws IOException if the storage cannot be written
     */
    static void create(Storage storage, CreateOptions options) throws IOException {
        create(storage, options, null);
    }

    /**
     * Writes a new image as {@link #create(Storage, CreateOptions)}; {@code data} is the external data file
     * the options name, created at the image's size, or {@code null}: preallocating an image with an external
     * data file needs it (the L2 entries point into it, as qemu-img creates them), and so does a raw data file,
     * which QEMU creates with metadata preallocation so that the metadata describes all of it.
     *
     * @throws IllegalArgumentException if an option is unknown or invalid (qemu-img's messages)
     * @throws UnsupportedFeatureException for preallocation with an external data file that is not given
     * @throws IOException if the storage cannot be written
     */
    static void create(Storage storage, CreateOptions options, Storage data) throws IOException {
        String resource = storage.name();
        Plan plan = plan(resource, options);
        Qcow2CreateSpec spec = plan.spec();
        long cs = spec.clusterSize();
        int clusterBits = Long.numberOfTrailingZeros(cs);
        long refcountBits = spec.refcountBits();
        Preallocation prealloc = spec.preallocation();
        String dataFile = spec.dataFile();
        if (spec.dataFileRaw() && prealloc == Preallocation.OFF && data != null) {
            // as QEMU's qcow2_co_create: a raw data file's metadata describes all of it
            prealloc = Preallocation.METADATA;
        }
        if (prealloc != Preallocation.OFF && dataFile != null && data == null) {
            // qemu-img always creates the data file first; a driver caller that did not give it gets this
            throw new UnsupportedFeatureException(resource, Feature.PREALLOCATION, "qcow2 preallocation",
                    "preallocating a qcow2 image with an external data file needs the created data file");
        }
        long size = plan.size();
        long l1Size = plan.l1Size();
        int refcountOrder = Long.numberOfTrailingZeros(refcountBits);
        long l1Clusters = Qcow2Checks.divCeil(l1Size * 8, cs);
        long refblockEntries = cs * 8 / refcountBits;
        // as QEMU, whose L1 table (allocated when the new image is truncated to its size) takes the clusters from 3
        // on, followed by the refcount blocks it needs when the first one does not cover it
        boolean moreBlocks = 3 + l1Clusters > refblockEntries;
        long used = moreBlocks ? 3 : 3 + l1Clusters;
        ByteBuffer h = plan.header();
        storage.write(h.clear(), 0);

        ByteBuffer reftable = ByteBuffer.allocate((int) cs).order(ByteOrder.BIG_ENDIAN).putLong(0, 2 * cs);
        storage.write(reftable, cs);
        Qcow2RefBlock block = new Qcow2RefBlock(new byte[(int) cs], refcountOrder);
        for (int i = 0; i < used; i++) {
            block.set(i, 1);
        }
        storage.write(ByteBuffer.wrap(block.bytes()), 2 * cs);
        if (moreBlocks) {
            Qcow2Refcounts refcounts = Qcow2Refcounts.open(storage, clusterBits, refcountOrder, cs, 1, storage.size());
            long first = refcounts.allocateRun((int) l1Clusters);
            if (first != 3) {
                throw new IllegalStateException(resource + ": the L1 table went to cluster " + first);
            }
            storage.write(ByteBuffer.allocate((int) (l1Size * 8)), 3 * cs);
            refcounts.sync();
            // a refcount table that had to grow replaced the one in cluster 1, which the header no longer names
            for (long c : refcounts.takeRetired()) {
                refcounts.decrement(c);
            }
            refcounts.sync();
        } else if (l1Size > 0) {
            storage.write(ByteBuffer.allocate((int) (l1Size * 8)), 3 * cs);
        }
        if (prealloc != Preallocation.OFF) {
            // as QEMU, which creates the image and then grows it with preallocation: the image above is complete
            // and consistent, and preallocation then allocates every cluster through the writer
            storage.sync();
            try (Qcow2Instance image = Qcow2Instance.open(storage, imago.api.spi.OpenContext.of(true))) {
                if (dataFile != null) {
                    image.attach(new imago.api.spi.Dependency.DataFile(dataFile), data);
                }
                image.preallocate(0, size, prealloc);
                image.flush();
                image.sync();
            }
        }
        if (plan.encryption() != null) {
            encrypt(storage, cs, plan.encryption(), options.secrets());
        }
    }

    /**
     * Refuses {@code options} as {@link #create} would, before anything is written (qemu-img refuses them before it
     * makes the file).
     *
     * @param resource the new image's name, for messages
     * @throws IllegalArgumentException if an option is unknown or invalid (qemu-img's messages)
     * @throws UnsupportedFeatureException for encryption without the LUKS module
     * @throws ImageLimitException if the size needs a larger L1 table than QEMU allows
     */
    static void check(String resource, CreateOptions options) throws ImageException {
        plan(resource, options);
    }

    /**
     * What {@link #create} writes first, with every check that needs no storage made.
     *
     * @param size the virtual size, rounded up to whole sectors
     * @param l1Size the active L1 table's entries
     * @param header the first cluster: header, extensions and backing file name
     * @param encryption the encryption format's options, or {@code null}
     */
    private record Plan(Qcow2CreateSpec spec, long size, long l1Size, ByteBuffer header,
            Map<String, String> encryption) {
    }

    private static Plan plan(String resource, CreateOptions options) throws ImageException {
        Qcow2CreateSpec spec = Qcow2CreateSpec.parse(options);
        int version = spec.version();
        long cs = spec.clusterSize();
        int clusterBits = Long.numberOfTrailingZeros(cs);
        boolean extendedL2 = spec.extendedL2();
        int compression = spec.compression();
        String backingFile = spec.backingFile();
        String backingFmt = spec.backingFormat();
        String dataFile = spec.dataFile();
        boolean dataFileRaw = spec.dataFileRaw();
        if (spec.preallocation() != Preallocation.OFF && backingFile != null && !extendedL2) {
            throw new IllegalArgumentException("Backing file and preallocation can only be used at the same time "
                    + "if extended_l2 is on");
        }
        if (options.size().isEmpty()) {
            throw new IllegalArgumentException("Image creation needs a size parameter");
        }
        long size = options.size().getAsLong();
        // qemu-img's checks of its resize to the size, in its order and words: its rounding up to a sector wraps
        // negative, then the block layer's largest length, then the L1 table (EFBIG, a limit)
        if (size > Long.MAX_VALUE - 511) {
            throw new IllegalArgumentException("Could not resize image: Image size cannot be negative");
        }
        size = (size + 511) & ~511L;
        if (size > MAX_LENGTH) {
            throw new IllegalArgumentException("Could not resize image: offset(" + size + ") exceeds maximum("
                    + MAX_LENGTH + ")");
        }
        int l2Bits = clusterBits - (extendedL2 ? 4 : 3);
        long l1Size = Qcow2Header.l1EntriesFor(size, clusterBits, l2Bits);
        if (l1Size * 8 > Qcow2Header.MAX_L1_BYTES) {
            throw new ImageLimitException(resource, "Could not resize image: Active L1 table too large");
        }
        int headerLength = version >= 3 ? 112 : 72;

        ByteBuffer h = ByteBuffer.allocate((int) cs).order(ByteOrder.BIG_ENDIAN);
        h.putInt(0, Qcow2Header.MAGIC).putInt(4, version).putInt(20, clusterBits).putLong(24, size)
                .putInt(36, (int) l1Size).putLong(40, l1Size > 0 ? 3 * cs : 0).putLong(48, cs).putInt(56, 1);
        if (version >= 3) {
            long incompat = (compression != 0 ? Qcow2Header.INCOMPAT_COMPRESSION : 0)
                    | (extendedL2 ? Qcow2Header.INCOMPAT_EXTL2 : 0)
                    | (dataFile != null ? Qcow2Header.INCOMPAT_DATA_FILE : 0);
            h.putLong(72, incompat).putLong(80, spec.lazyRefcounts() ? Qcow2Header.COMPAT_LAZY_REFCOUNTS : 0)
                    .putLong(88, dataFileRaw ? Qcow2Header.AUTOCLEAR_DATA_FILE_RAW : 0)
                    .putInt(96, Long.numberOfTrailingZeros(spec.refcountBits())).putInt(100, headerLength)
                    .put(104, (byte) compression);
        }
        int pos = headerLength;
        if (backingFmt != null) {
            pos = extension(h, pos, Qcow2Header.EXT_BACKING_FORMAT, backingFmt.getBytes(StandardCharsets.UTF_8));
        }
        if (dataFile != null) {
            pos = extension(h, pos, Qcow2Header.EXT_DATA_FILE, dataFile.getBytes(StandardCharsets.UTF_8));
        }
        if (version >= 3 && cs > 4096) {
            // QEMU leaves the feature-name table out of clusters of 4 KiB and less, to keep room for names
            pos = extension(h, pos, Qcow2Header.EXT_FEATURE_NAMES, Qcow2Extension.featureTable());
        }
        pos += 8; // the end-of-extensions entry: type 0, length 0
        if (backingFile != null) {
            byte[] name = backingFile.getBytes(StandardCharsets.UTF_8);
            if (name.length > 1023 || pos + name.length > cs) {
                throw new IllegalArgumentException("Backing file name too long");
            }
            h.putLong(8, pos).putInt(16, name.length).put(pos, name);
        }
        Map<String, String> encryption = Qcow2CreateSpec.encryption(options.formatOptions());
        if (encryption != null) {
            // the options, the secret and an installed LUKS module
            Qcow2Crypto.format(resource, "luks").headerLength(encryption);
            String id = encryption.get("key-secret");
            if (id == null) {
                throw new IllegalArgumentException("Parameter 'encrypt.key-secret' is required for cipher");
            }
            if (options.secrets().get(id).map(p -> {
                java.util.Arrays.fill(p, (byte) 0);
                return p;
            }).isEmpty()) {
                throw new IllegalArgumentException("No secret with id '" + id + "'");
            }
        }
        return new Plan(spec, size, l1Size, h.clear(), encryption);
    }

    /**
     * Encrypts the new, empty image as QEMU's qcow2_set_up_encryption does after the image has its size: the LUKS
     * header goes into newly allocated clusters (after the L1 table), then the header names it (crypt_method 2 and
     * the crypto header extension).
     */
    private static void encrypt(Storage storage, long cs, Map<String, String> encryption, imago.api.Secrets secrets)
            throws IOException {
        ByteBuffer cluster0 = ByteBuffer.allocate((int) cs);
        storage.read(cluster0, 0);
        Qcow2Header header = Qcow2Header.parse(cluster0.flip(), storage.name(), storage.size());
        long length = Qcow2Crypto.format(storage.name(), "luks").headerLength(encryption);
        Qcow2Refcounts refcounts = Qcow2Refcounts.open(storage, header, storage.size());
        long first = refcounts.allocateRun((int) Qcow2Checks.divCeil(length, cs));
        long offset = first * cs;
        refcounts.sync();
        // the header's clusters belong to the file whole, as QEMU leaves it (the unused key slots are never written)
        long end = offset + Qcow2Checks.divCeil(length, cs) * cs;
        if (storage.size() < end) {
            storage.resize(end, Preallocation.OFF);
        }
        Qcow2Crypto.create(storage, offset, length, encryption, secrets);
        storage.sync();
        storage.write(ByteBuffer.allocate(4).putInt(0, Qcow2Header.CRYPT_LUKS), 32);
        Qcow2HeaderRewrite.rewrite(storage, (int) cs, r -> r.withExtension(Qcow2Header.EXT_CRYPTO,
                ByteBuffer.allocate(16).putLong(offset).putLong(length).array()));
    }

    private static int extension(ByteBuffer h, int pos, int type, byte[] data) {
        if (pos + 8 + data.length + 16 > h.capacity()) {
            throw new IllegalArgumentException("header extensions do not fit the first cluster");
        }
        h.putInt(pos, type).putInt(pos + 4, data.length).put(pos + 8, data);
        return pos + 8 + ((data.length + 7) & ~7);
    }

}
