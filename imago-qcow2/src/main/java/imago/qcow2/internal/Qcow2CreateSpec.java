package imago.qcow2.internal;

import imago.api.CreateOptions;
import imago.api.Preallocation;
import imago.api.spi.CreateChecks;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The qcow2 image that {@code qemu-img create -f qcow2 -o ...} options describe, checked as qemu-img checks them
 * (the same messages), for {@link Qcow2Create}; {@link Qcow2Measure} reads them as qemu-img's measure does, with
 * some of the checks here.
 *
 * @param version 2 ({@code compat=0.10}) or 3
 * @param clusterSize bytes, a power of two from 512 to 2 MiB
 * @param refcountBits a power of two from 1 to 64
 * @param extendedL2 whether L2 entries carry subcluster bitmaps
 * @param lazyRefcounts whether refcounts are written lazily
 * @param compression 0 (zlib) or 1 (zstd)
 * @param preallocation the preallocation mode
 * @param backingFile the backing file to record, or {@code null}
 * @param backingFormat its format, or {@code null}
 * @param dataFile the external data file to record, or {@code null}
 * @param dataFileRaw whether the data file is raw
 */
record Qcow2CreateSpec(int version, long clusterSize, long refcountBits, boolean extendedL2, boolean lazyRefcounts,
        int compression, Preallocation preallocation, String backingFile, String backingFormat, String dataFile,
        boolean dataFileRaw) {

    /** The {@code -o} names {@link Qcow2Create#create} accepts. */
    static final Set<String> OPTION_NAMES = Set.of("backing_file", "backing_fmt", "cluster_size", "compat",
            "compression_type", "data_file", "data_file_raw", "extended_l2", "lazy_refcounts", "preallocation",
            "refcount_bits", "encryption", "encrypt.format", "encrypt.key-secret", "encrypt.cipher-alg",
            "encrypt.cipher-mode", "encrypt.ivgen-alg", "encrypt.ivgen-hash-alg", "encrypt.hash-alg",
            "encrypt.iter-time");

    /**
     * The encryption options in qemu-img's order (its Formatting line's): the deprecated {@code encryption} switch,
     * then the encryption format's own, after {@code encrypt.}.
     */
    static final java.util.List<String> ENCRYPT_OPTIONS = java.util.List.of("encryption", "encrypt.format",
            "encrypt.key-secret", "encrypt.cipher-alg", "encrypt.cipher-mode", "encrypt.ivgen-alg",
            "encrypt.ivgen-hash-alg", "encrypt.hash-alg", "encrypt.iter-time");

    /**
     * The options of the encryption format (without their {@code encrypt.} prefix) a new image is encrypted with,
     * or {@code null} for none.
     *
     * @throws IllegalArgumentException for QEMU's legacy AES encryption, an unknown format, or encryption options
     *         without {@code encrypt.format=luks}
     */
    static Map<String, String> encryption(Map<String, String> o) {
        String format = CreateChecks.encryptionFormat(o);
        if ("aes".equals(format)) {
            if (!o.containsKey("encrypt.key-secret")) { // qemu-img asks for the key first
                throw new IllegalArgumentException("Parameter 'encrypt.key-secret' is required for cipher");
            }
            throw new IllegalArgumentException("qcow2's legacy AES encryption (encryption=on, encrypt.format=aes) is "
                    + "not supported: use encrypt.format=luks");
        }
        Map<String, String> out = luksOptions(o);
        if (format == null) {
            if (!out.isEmpty()) {
                throw new IllegalArgumentException("Parameter 'encrypt.format' is missing");
            }
            return null;
        }
        if (!format.equals("luks")) {
            throw new IllegalArgumentException("Parameter 'format' does not accept value '" + format + "'");
        }
        return out;
    }

    /** The {@code encrypt.} options but the format, without their prefix, in their order. */
    static Map<String, String> luksOptions(Map<String, String> o) {
        Map<String, String> out = new java.util.LinkedHashMap<>();
        for (var e : o.entrySet()) {
            if (e.getKey().startsWith("encrypt.") && !e.getKey().equals("encrypt.format")) {
                out.put(e.getKey().substring("encrypt.".length()), e.getValue());
            }
        }
        return out;
    }

    /** Refuses an option name qcow2 does not know. */
    static void checkNames(Map<String, String> o) {
        for (String k : o.keySet()) {
            if (!OPTION_NAMES.contains(k)) {
                throw new IllegalArgumentException("Invalid parameter '" + k + "' for qcow2 (known: "
                        + new TreeSet<>(OPTION_NAMES) + ")");
            }
        }
    }

    /** Refuses a cluster size qcow2 cannot have, or one too small for extended L2 entries. */
    static void checkClusterSize(long cs, boolean extendedL2) {
        if (cs < 512 || cs > (2 << 20) || Long.bitCount(cs) != 1) {
            throw new IllegalArgumentException("Cluster size must be a power of two between 512 and 2048k");
        }
        if (extendedL2 && cs < 16384) {
            throw new IllegalArgumentException("Extended L2 entries are only supported with cluster sizes of at least "
                    + "16384 bytes");
        }
    }

    /** The {@code refcount_bits} option (16 if not given), a power of two up to 64. */
    static long refcountBits(Map<String, String> o) {
        long bits = o.containsKey("refcount_bits") ? CreateChecks.number("refcount_bits", o.get("refcount_bits")) : 16;
        if (Long.compareUnsigned(bits, 64) > 0 || Long.bitCount(bits) != 1) {
            throw new IllegalArgumentException("Refcount width must be a power of two and may not exceed 64 bits");
        }
        return bits;
    }

    /**
     * Reads and checks {@code options}' format options.
     *
     * @throws IllegalArgumentException if an option is unknown or invalid (qemu-img's messages)
     */
    static Qcow2CreateSpec parse(CreateOptions options) {
        Map<String, String> o = options.formatOptions();
        checkNames(o);
        Preallocation prealloc = o.containsKey("preallocation") ? Preallocation.parse(o.get("preallocation"))
                : options.preallocation();
        String dataFile = o.get("data_file");
        boolean dataFileRaw = onOff(o, "data_file_raw");
        if (dataFileRaw && dataFile == null) {
            throw new IllegalArgumentException("data-file-raw requires data-file");
        }
        int version = switch (o.getOrDefault("compat", "1.1")) {
            case "0.10", "v2" -> 2;
            case "1.1", "v3" -> 3;
            // qemu-img hands compat to the create job as its version, whose words the message names
            default -> throw new IllegalArgumentException("Parameter 'version' does not accept value '"
                    + o.get("compat") + "'");
        };
        boolean extendedL2 = onOff(o, "extended_l2");
        boolean lazy = onOff(o, "lazy_refcounts");
        long cs = o.containsKey("cluster_size") ? parseSize(o.get("cluster_size"), "cluster_size") : 65536;
        checkClusterSize(cs, false); // extended L2's minimum is checked after the compatibility level's needs
        long refcountBits = refcountBits(o);
        int compression = switch (o.getOrDefault("compression_type", "zlib")) {
            case "zlib" -> 0;
            case "zstd" -> 1;
            default -> throw new IllegalArgumentException("Parameter 'compression-type' does not accept value '"
                    + o.get("compression_type") + "'");
        };
        if (version < 3) {
            if (lazy) {
                throw new IllegalArgumentException("Lazy refcounts only supported with compatibility level 1.1 and above "
                        + "(use version=v3 or greater)");
            }
            if (refcountBits != 16) {
                throw new IllegalArgumentException("Different refcount widths than 16 bits require compatibility level "
                        + "1.1 or above (use version=v3 or greater)");
            }
            if (extendedL2) {
                throw new IllegalArgumentException("Extended L2 entries are only supported with compatibility level 1.1 "
                        + "and above (use version=v3 or greater)");
            }
            if (compression != 0) {
                throw new IllegalArgumentException("Non-zlib compression type is only supported with compatibility "
                        + "level 1.1 and above (use version=v3 or greater)");
            }
        }
        checkClusterSize(cs, extendedL2);
        String backingFile = o.containsKey("backing_file") ? o.get("backing_file") : options.backingFile().orElse(null);
        String backingFmt = o.containsKey("backing_fmt") ? o.get("backing_fmt") : options.backingFormat().orElse(null);
        if (backingFmt != null && backingFile == null) {
            throw new IllegalArgumentException("Backing format cannot be used without backing file");
        }
        if (dataFile != null && version < 3) {
            throw new IllegalArgumentException("External data files are only supported with compatibility level 1.1 "
                    + "and above (use version=v3 or greater)");
        }
        if (dataFileRaw && backingFile != null) {
            throw new IllegalArgumentException("Backing file and data-file-raw cannot be used at the same time");
        }
        return new Qcow2CreateSpec(version, cs, refcountBits, extendedL2, lazy, compression, prealloc, backingFile,
                backingFmt, dataFile, dataFileRaw);
    }

    static boolean onOff(Map<String, String> o, String key) {
        String v = o.get(key);
        if (v == null) {
            return false;
        }
        return switch (v.toLowerCase(Locale.ROOT)) {
            case "on", "true", "yes" -> true;
            case "off", "false", "no" -> false;
            default -> throw new IllegalArgumentException("Parameter '" + key + "' expects 'on' or 'off', got '" + v
                    + "'");
        };
    }

    /** A qemu size: a number with an optional k/M/G suffix (powers of 1024). */
    static long parseSize(String v, String key) {
        return CreateChecks.sizeOption(key, v, 'g', Long.MAX_VALUE, true);
    }
}
