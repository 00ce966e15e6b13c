package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COMPRESSED;

import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Amender;
import imago.api.spi.CreateChecks;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.DoubleConsumer;

/**
 * {@code qemu-img amend} for qcow2 ({@link Amender}), step by step as QEMU 7.2's qcow2_amend_options: the options
 * are read and checked first (nothing changes on a refusal there), then the image is upgraded to v3, given its new
 * refcount width ({@link Qcow2RefcountWidth}), its external data file name and raw flag, lazy refcounts on or off,
 * its new size, and downgraded to v2 last (zero clusters expanded by {@link Qcow2ZeroExpansion} first). A step that
 * fails leaves the steps before it done, as in QEMU. Each header change is one write of cluster 0, synced, after
 * everything it depends on is on stable media ({@link Qcow2HeaderRewrite}).
 *
 * <p>More than QEMU: a downgrade drops the persistent bitmaps and frees their clusters (QEMU leaves the bitmaps
 * extension behind, which then leaks the clusters and makes every open warn).
 */
final class Qcow2Amend extends Qcow2Room implements Amender {
    /** qcow2 create options that amend does not take. */
    private static final Set<String> CREATE_ONLY = Set.of("cluster_size", "preallocation", "encryption",
            "compression_type", "extended_l2", "encrypt.format", "encrypt.key-secret", "encrypt.cipher-alg",
            "encrypt.cipher-mode", "encrypt.ivgen-alg", "encrypt.ivgen-hash-alg", "encrypt.hash-alg");
    private static final Set<String> AMENDABLE = Set.of("size", "compat", "backing_file", "backing_fmt", "data_file",
            "data_file_raw", "encrypt.new-secret", "encrypt.old-secret", "encrypt.state", "encrypt.keyslot",
            "encrypt.iter-time", "lazy_refcounts", "refcount_bits");

    private final Qcow2Tables tables;
    private final Qcow2Claims claims;
    private final Qcow2WriteBack writeBack;

    Qcow2Amend(Qcow2State st, Qcow2Tables tables, Qcow2Claims claims, Qcow2WriteBack writeBack) {
        super(st);
        this.tables = tables;
        this.claims = claims;
        this.writeBack = writeBack;
    }

    @Override
    public void amend(Map<String, String> options, boolean force, DoubleConsumer progress, Resize resize)
            throws IOException {
        st.requireWritable(0);
        Qcow2Header h = st.header;
        // what qemu_opts_do_parse refuses, in the order given
        Boolean lazy = null;
        Boolean dataFileRaw = null;
        Long size = null;
        for (Map.Entry<String, String> e : options.entrySet()) {
            String k = e.getKey();
            if (CREATE_ONLY.contains(k)) {
                throw new IllegalArgumentException("Invalid parameter '" + k + "'\nThis option is only supported for "
                        + "image creation");
            }
            if (!AMENDABLE.contains(k)) {
                throw new IllegalArgumentException("Invalid parameter '" + k + "'");
            }
            switch (k) {
                case "lazy_refcounts" -> lazy = bool(k, e.getValue());
                case "data_file_raw" -> dataFileRaw = bool(k, e.getValue());
                case "refcount_bits", "encrypt.keyslot", "encrypt.iter-time" -> CreateChecks.number(k, e.getValue());
                case "size" -> size = size(e.getValue());
                default -> { }
            }
        }
        // qcow2_amend_options' checks, before anything changes (qemu-img shows its progress from here on)
        progress.accept(0);
        int newVersion = h.version();
        int refcountBits = 1 << h.refcountOrder();
        String compat = options.get("compat");
        if (compat != null) {
            newVersion = switch (compat) {
                case "0.10", "v2" -> 2;
                case "1.1", "v3" -> 3;
                default -> throw new IllegalArgumentException("Unknown compatibility level " + compat);
            };
        }
        Map<String, String> keySlots = new java.util.LinkedHashMap<>();
        options.forEach((k, v) -> {
            if (k.startsWith(Qcow2Crypto.PREFIX)) {
                keySlots.put(k.substring(Qcow2Crypto.PREFIX.length()), v);
            }
        });
        if (!keySlots.isEmpty()) {
            if (st.crypto == null) {
                throw new IllegalArgumentException("Can't amend encryption options - encryption not present");
            }
            // the LUKS header's key slots, as QEMU's qcrypto_block_amend_options (crash-safe on its own)
            st.crypto.amendKeySlots(keySlots, force);
        }
        if (options.containsKey("refcount_bits")) {
            refcountBits = (int) Qcow2CreateSpec.refcountBits(options);
        }
        String dataFile = options.get("data_file");
        if (dataFile != null && !h.hasDataFile()) {
            throw new IllegalArgumentException("data-file can only be set for images that use an external data file");
        }
        if (dataFileRaw != null && dataFileRaw && !(h.hasDataFile() && h.dataFileRaw())) {
            throw new IllegalArgumentException("data-file-raw cannot be set on existing images");
        }
        if (options.containsKey("backing_file") || options.containsKey("backing_fmt")) {
            if (!Objects.equals(options.get("backing_file"), h.backingFile().orElse(null))
                    || !Objects.equals(options.get("backing_fmt"), h.backingFormat().orElse(null))) {
                throw new IllegalArgumentException("Cannot amend the backing file\nYou can use 'qemu-img rebase' "
                        + "instead.");
            }
        }
        claims.lock();
        try {
            claims.awaitQuiet();
            writeBack.flush();
            st.syncAll();
            if (newVersion > h.version()) {
                progress.accept(0); // QEMU's two halves of an upgrade, reported as it reports them
                progress.accept(0.5);
                rewrite(r -> r.withVersion(3));
                progress.accept(1);
            }
            if (refcountBits != 1 << st.header.refcountOrder()) {
                if (newVersion < 3 && refcountBits != 16) {
                    throw new IllegalArgumentException("Refcount widths other than 16 bits require compatibility "
                            + "level 1.1 or above (use compat=1.1 or greater)");
                }
                writeBack.markClean();
                writeBack.flush();
                st.syncAll();
                st.header = new Qcow2RefcountWidth(st).change(Integer.numberOfTrailingZeros(refcountBits));
                st.refcounts = Qcow2Refcounts.open(storage, st.header, storage.size());
            }
            if (dataFileRaw != null || dataFile != null) {
                boolean raw = dataFileRaw != null ? dataFileRaw : st.header.dataFileRaw();
                rewrite(r -> {
                    long ac = r.header().autoclearFeatures();
                    r.withAutoclear(raw ? ac | Qcow2Header.AUTOCLEAR_DATA_FILE_RAW : ac & ~Qcow2Header.AUTOCLEAR_DATA_FILE_RAW);
                    if (dataFile != null) {
                        // an empty name removes it, as in QEMU: the image then needs its data file named on opening
                        r.withExtension(Qcow2Header.EXT_DATA_FILE, dataFile.isEmpty() ? null
                                : dataFile.getBytes(StandardCharsets.UTF_8));
                    }
                    return r;
                });
            }
            if (lazy != null && lazy != st.header.lazyRefcounts()) {
                if (lazy && newVersion < 3) {
                    throw new IllegalArgumentException("Lazy refcounts only supported with compatibility level 1.1 "
                            + "and above (use compat=1.1 or greater)");
                }
                if (!lazy) {
                    writeBack.markClean();
                }
                long compatible = st.header.compatibleFeatures();
                boolean on = lazy;
                rewrite(r -> r.withCompatible(on ? compatible | Qcow2Header.COMPAT_LAZY_REFCOUNTS
                        : compatible & ~Qcow2Header.COMPAT_LAZY_REFCOUNTS));
                st.lazyOption = null; // the bit now says what is used, as QEMU's amend sets its use with it

            }
        } finally {
            claims.unlock();
        }
        if (size != null && size != 0) {
            if (size % 512 != 0) {
                throw new IllegalArgumentException("The new size must be a multiple of 512");
            }
            resize.to(size);
        }
        if (newVersion < st.header.version()) {
            downgrade(progress);
        }
    }

    private void downgrade(DoubleConsumer progress) throws IOException {
        Qcow2Header h = st.header;
        if (h.refcountOrder() != 4) {
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "qcow2 downgrade",
                    "compat=0.10 requires refcount_bits=16");
        }
        if (h.hasDataFile()) {
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "qcow2 downgrade",
                    "Cannot downgrade an image with a data file");
        }
        writeBack.markClean();
        long incompatible = st.header.incompatibleFeatures() & ~Qcow2Header.INCOMPAT_COMPRESSION;
        if (incompatible != 0) {
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "qcow2 downgrade",
                    "Cannot downgrade an image with incompatible features 0x" + Long.toHexString(incompatible)
                    + " set");
        }
        if (h.compressionType() != 0 && hasCompressedClusters()) {
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "qcow2 downgrade",
                    "Cannot downgrade an image with zstd compression type and existing compressed clusters");
        }
        if (st.tracker != null) {
            // v2 has no autoclear bits to keep bitmaps trusted: they go, their clusters freed
            for (Qcow2Bitmaps.Bitmap b : st.tracker.current()) {
                st.tracker.remove(st.tracker.find(b.name()));
            }
            writeBack.storeBitmaps();
        }
        claims.lock();
        try {
            claims.awaitQuiet();
            new Qcow2ZeroExpansion(st, tables).expand(progress);
            // the expanded clusters and their tables are on stable media before the header says v2
            writeBack.flush();
            st.syncAll();
            rewrite(r -> r.withVersion(2));
        } finally {
            claims.unlock();
        }
    }

    private boolean hasCompressedClusters() throws IOException {
        for (long e : st.l1) {
            long l2 = e & Qcow2Entries.OFFSET_MASK;
            if (l2 != 0) {
                for (long entry : tables.table(l2)) {
                    if ((entry & COMPRESSED) != 0) {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    private void rewrite(java.util.function.UnaryOperator<Qcow2HeaderRewrite> edit) throws IOException {
        st.header = Qcow2HeaderRewrite.rewrite(storage, clusterSize, edit);
    }

    /** A QEMU bool option: on/off, yes/no, true/false. */
    private static boolean bool(String name, String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "on", "yes", "true" -> true;
            case "off", "no", "false" -> false;
            default -> throw new IllegalArgumentException("Parameter '" + name + "' expects 'on' or 'off'");
        };
    }

    /** A size option as QEMU reads it: a number with an optional suffix k, M, G, T, P or E (powers of 1024). */
    private static long size(String value) {
        String s = value.trim();
        int shift = 0;
        if (!s.isEmpty()) {
            int at = "bkmgtpe".indexOf(Character.toLowerCase(s.charAt(s.length() - 1)));
            if (at >= 0) {
                shift = at == 0 ? 0 : 10 * at;
                s = s.substring(0, s.length() - 1);
            }
        }
        try {
            java.math.BigDecimal n = new java.math.BigDecimal(s)
                    .multiply(new java.math.BigDecimal(java.math.BigInteger.ONE.shiftLeft(shift)));
            if (n.signum() < 0 || s.startsWith("-")) {
                throw new NumberFormatException();
            }
            return n.setScale(0, java.math.RoundingMode.DOWN).longValueExact();
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException("Parameter 'size' expects a non-negative number below 2^64\nOptional "
                    + "suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.",
                    e);
        }
    }
}
