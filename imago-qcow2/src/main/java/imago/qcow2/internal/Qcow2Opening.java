package imago.qcow2.internal;

import imago.api.CheckReport;
import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.NoSuchSnapshotException;
import imago.api.Repair;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Opening a layer: the header, the snapshot table and the L1 table to use are read and validated; a writable open
 * refuses what the writer cannot keep consistent (the corrupt bit, a snapshot), repairs a dirty image (lazy
 * refcounts, not closed cleanly) first, as QEMU repairs one on a read/write open, clears the autoclear bits it does
 * not maintain before the first write, and opens the refcounts and the bitmap tracker.
 */
final class Qcow2Opening {
    /** Default L2 cache: enough to map 8 GiB (or the whole image), at most 32 MiB. */
    static final long DEFAULT_COVERAGE = 8L << 30;
    static final long MAX_DEFAULT_CACHE = 32L << 20;

    /** An opened layer's picture and the L2 tables its cache holds. */
    record Opened(Qcow2State state, int cacheTables) {
    }

    private Qcow2Opening() {
    }

    /**
     * Opens {@code storage}: reads and validates the header, the snapshot table and the L1 table to use.
     */
    static Opened open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        String resource = storage.name();
        long fileSize = storage.size();
        ByteBuffer head = ByteBuffer.allocate(Qcow2Header.fixedLength());
        storage.read(head, 0);
        // a header cut short reads on as zeroes, as QEMU reads it (and then finds its fields wrong)
        int cs = Qcow2Header.clusterSizeOf(head.flip(), resource);
        ByteBuffer cluster0 = ByteBuffer.allocate(cs);
        storage.read(cluster0, 0);
        boolean forCheck = context.forCheck();
        // opened for checking, tables past the end of the file are the check's to report, and opened read-only they
        // read as zeroes (a file cut short), as QEMU opens them; a writable open still refuses them, so that no
        // allocation trusts refcounts that are not there
        // opened for its metadata only (info), an external data file without a name is no obstacle, as in QEMU
        boolean tablesInFile = context.writable() && !forCheck;
        Qcow2Header header = Qcow2Header.parse(cluster0.flip(), resource, tablesInFile ? fileSize : Long.MAX_VALUE,
                forCheck, context.metadataOnly() && !context.writable());
        Boolean lazy = lazyOption(context.options(), header);
        if (context.writable() && !forCheck) {
            refuseWritable(header, context, resource);
            if (header.dirty()) {
                // lazy refcounts were in use and the image was not closed cleanly: its refcounts cannot be trusted
                // until they are rebuilt from the tables (as QEMU repairs a dirty image on a read/write open)
                header = repairDirty(storage, resource);
                fileSize = storage.size();
            }
        }
        // an encrypted image is unlocked (or refused) before anything is written
        Qcow2Crypto crypto = header.encrypted() ? Qcow2Crypto.open(storage, header, fileSize, context) : null;
        // opened for checking, a damaged snapshot table is the check's to report: read as far as QEMU's check does
        List<Qcow2Snapshot> snapshots = header.nbSnapshots() == 0 ? List.of()
                : forCheck ? Qcow2Snapshot.readForCheck(storage, header, false, m -> { }).entries()
                : Qcow2Snapshot.readTable(storage, header, fileSize);
        // opened for checking, a damaged bitmap directory is the check's to report
        Qcow2Bitmaps.Directory directory = forCheck ? Qcow2Bitmaps.Directory.NONE
                : Qcow2Bitmaps.read(storage, header, fileSize);

        long l1Offset = header.l1TableOffset();
        int l1Size = header.l1Size();
        long size = header.guestSize();
        String wanted = context.options().get("snapshot");
        if (wanted != null) {
            Qcow2Snapshot s = snapshots.stream().filter(x -> x.id().equals(wanted)).findFirst()
                    .or(() -> snapshots.stream().filter(x -> x.name().equals(wanted)).findFirst())
                    .orElseThrow(() -> new NoSuchSnapshotException(resource, wanted));
            l1Offset = s.l1TableOffset();
            l1Size = s.l1Size();
            if (s.diskSize() >= 0) {
                size = s.diskSize();
            }
        }
        long[] l1 = Qcow2Tables.readTable(storage, l1Offset, l1Size);
        Qcow2Refcounts refcounts = null;
        Qcow2BitmapTracker tracker = null;
        if (context.writable() && !forCheck) {
            refcounts = Qcow2Refcounts.open(storage, header, fileSize);
            // imago maintains a raw data file and the bitmaps; it clears any other autoclear bit before the first
            // write, as the bits ask of a program that does not know them
            long kept = header.autoclearFeatures() & (Qcow2Header.AUTOCLEAR_DATA_FILE_RAW
                    | (directory.bitmaps().isEmpty() ? 0 : Qcow2Header.AUTOCLEAR_BITMAPS));
            if (header.version() >= 3 && header.autoclearFeatures() != kept) {
                Qcow2HeaderFields.writeAutoclear(storage, kept);
                storage.flush();
                storage.sync();
            }
            tracker = Qcow2BitmapTracker.open(storage, header, directory, fileSize, size, kept);
        }
        Qcow2State state = new Qcow2State(storage, header, fileSize, size, l1, l1Offset, snapshots,
                directory.bitmaps(), tracker, refcounts);
        state.crypto = crypto;
        state.lazyOption = lazy;
        return new Opened(state, cacheTables(context.options(), header, size, resource));
    }

    /**
     * The {@code lazy-refcounts} open option ({@code on} or {@code off}, QEMU's spellings of them too), or null;
     * checked as QEMU checks it before anything else is read, on any open.
     *
     * @throws IllegalArgumentException in QEMU's words, for another value or for {@code on} on a version 2 image
     */
    private static Boolean lazyOption(Map<String, String> options, Qcow2Header header) {
        String value = options.get("lazy-refcounts");
        if (value == null) {
            return null;
        }
        boolean on = switch (value) {
            case "on", "yes", "true", "y" -> true;
            case "off", "no", "false", "n" -> false;
            default -> throw new IllegalArgumentException("Parameter 'lazy-refcounts' expects 'on' or 'off'");
        };
        if (on && header.version() < 3) {
            throw new IllegalArgumentException("Lazy refcounts require a qcow2 image with at least qemu 1.1 "
                    + "compatibility level");
        }
        return on;
    }

    /** Refuses, before anything is written, writable opens of images this writer cannot keep consistent. */
    private static void refuseWritable(Qcow2Header header, OpenContext context, String resource) throws IOException {
        if (header.corrupt()) {
            throw new CorruptImageException(resource, 72, "qcow2: Image is corrupt; cannot be opened read/write");
        }
        if (context.options().get("snapshot") != null) {
            throw new UnsupportedFeatureException(resource, Feature.INTERNAL_SNAPSHOTS,
                    "an internal snapshot can only be opened read-only");
        }
        if ((header.refcountTableOffset() & (header.clusterSize() - 1)) != 0) {
            throw new CorruptImageException(resource, 48, "refcount table offset is not cluster aligned");
        }
    }

    /**
     * Repairs a dirty image's refcounts ({@code qemu-img check -r all}), which clears the dirty bit, and
     * returns the header read again.
     */
    private static Qcow2Header repairDirty(Storage storage, String resource) throws IOException {
        CheckReport report = new Qcow2Check(storage).run(Repair.ALL);
        ByteBuffer cluster0 = ByteBuffer.allocate(Qcow2Header.clusterSizeOf(readHead(storage), resource));
        storage.read(cluster0, 0);
        Qcow2Header header = Qcow2Header.parse(cluster0.flip(), resource, storage.size());
        if (header.dirty() || !report.clean()) {
            throw new CorruptImageException(resource, 72, "Could not repair dirty image: " + report.corruptions()
                    + " corruptions, " + report.leaks() + " leaks and " + report.checkErrors()
                    + " check errors remain; run qemu-img check -r all");
        }
        return header;
    }

    private static ByteBuffer readHead(Storage storage) throws IOException {
        ByteBuffer head = ByteBuffer.allocate(Qcow2Header.fixedLength());
        storage.read(head, 0);
        return head.flip();
    }

    /** {@code digits} as a long, at most 2^63 - 1 (the cache is capped far below anyway). */
    private static long parseCapped(String digits) {
        try {
            return Long.parseLong(digits);
        } catch (NumberFormatException e) {
            return Long.MAX_VALUE;
        }
    }

    /** How many L2 tables the cache holds, from the options or the default coverage. */
    static int cacheTables(Map<String, String> options, Qcow2Header header, long size, String resource) {
        int cs = header.clusterSize();
        String opt = options.get("l2-cache-size");
        String name = "l2-cache-size";
        if (opt == null) {
            opt = options.get("cache-size");
            name = "cache-size";
        }
        long bytes;
        if (opt != null) {
            // decimal bytes (the CLI turns qemu's suffixes into them); refused in QEMU's words otherwise
            bytes = opt.isEmpty() || !opt.chars().allMatch(c -> c >= '0' && c <= '9') ? -1 : parseCapped(opt);
            if (bytes < 0) {
                throw new IllegalArgumentException("Parameter '" + name + "' expects a non-negative number below 2^64\n"
                        + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                        + "and exabytes, respectively.");
            }
        } else {
            long covered = Math.min(DEFAULT_COVERAGE, size);
            long entries = Qcow2Checks.divCeil(covered, cs);
            bytes = Math.min(MAX_DEFAULT_CACHE, entries * (header.extendedL2() ? 16 : 8));
        }
        long tables = Qcow2Checks.divCeil(bytes, cs);
        return (int) Math.max(opt != null ? 1 : 4, Math.min(tables, Integer.MAX_VALUE));
    }
}
