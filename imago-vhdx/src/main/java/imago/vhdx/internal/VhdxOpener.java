package imago.vhdx.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Opens a VHDX as QEMU 7.2 does, with its checks and messages where it has them: the file type identifier, the
 * current header, a region table, the log (replayed on a writable open, refused on a read-only one), the metadata
 * and the BAT, whose blocks must lie in the file after the metadata and not over the log, the BAT or the metadata.
 */
final class VhdxOpener {
    private VhdxOpener() {
    }

    static VhdxInstance open(Storage storage, boolean writable, boolean forCheck) throws IOException {
        String name = storage.name();
        ByteBuffer sig = VhdxFields.le(8);
        storage.read(sig, 0);
        if (sig.hasRemaining() || !Arrays.equals(sig.array(), VhdxFields.FILE_SIGNATURE)) {
            throw new CorruptImageException(name, 0, "not a VHDX image: no file type identifier \"vhdxfile\"");
        }
        VhdxHeaders headers = VhdxHeaders.read(storage);
        VhdxHeader header = headers.current();
        long headerAt = headers.currentOffset();
        if (header.logLength() > 0 && (header.logOffset() % VhdxFields.MIB != 0 || header.logLength() % VhdxFields.MIB
                != 0 || header.logOffset() < VhdxFields.HEADER_SECTION || header.logOffset() + header.logLength() < 0)) {
            throw new CorruptImageException(name, headerAt + 68, "log of " + header.logLength() + " bytes at "
                    + Long.toUnsignedString(header.logOffset()) + " is not 1 MiB aligned after the first MiB");
        }
        if (writable && header.logLength() < 2L * VhdxLog.SECTOR) {
            throw new CorruptImageException(name, headerAt + 68, "log of " + header.logLength() + " bytes: too small "
                    + "to write metadata through; refusing to write to this image");
        }
        VhdxRegionTable regions = regionTable(storage);
        long[] batRegion = null;
        long[] metaRegion = null;
        List<long[]> used = new ArrayList<>();
        used.add(new long[] {0, VhdxFields.HEADER_SECTION});
        if (header.logLength() > 0) {
            used.add(new long[] {header.logOffset(), header.logOffset() + header.logLength()});
        }
        for (VhdxRegionTable.Entry e : regions.entries()) {
            long at = VhdxFields.REGION_TABLE_OFFSETS[0];
            if (e.offset() % VhdxFields.MIB != 0 || e.length() % VhdxFields.MIB != 0 || e.length() == 0
                    || e.offset() < VhdxFields.HEADER_SECTION || e.offset() + e.length() < 0) {
                throw new CorruptImageException(name, at, "region " + e.guid() + " (" + e.length() + " bytes at "
                        + e.offset() + ") is not 1 MiB aligned after the first MiB");
            }
            for (long[] u : used) {
                if (e.offset() < u[1] && u[0] < e.offset() + e.length()) {
                    throw new CorruptImageException(name, at, "region " + e.guid() + " (" + e.length() + " bytes at "
                            + e.offset() + ") overlaps another region, the log or the headers (" + u[0] + ".." + u[1]
                            + ")");
                }
            }
            used.add(new long[] {e.offset(), e.offset() + e.length()});
            if (e.guid().equals(VhdxFields.BAT_REGION) && batRegion == null) {
                batRegion = new long[] {e.offset(), e.length()};
            } else if (e.guid().equals(VhdxFields.METADATA_REGION) && metaRegion == null) {
                metaRegion = new long[] {e.offset(), e.length()};
            } else if (e.guid().equals(VhdxFields.BAT_REGION) || e.guid().equals(VhdxFields.METADATA_REGION)) {
                throw new CorruptImageException(name, at, "region " + e.guid() + " appears twice");
            } else if (e.required()) {
                throw new UnsupportedFeatureException(name, Feature.OTHER, "vhdx region " + e.guid(),
                        "a required region is unknown: " + e.guid());
            }
        }
        if (batRegion == null || metaRegion == null) {
            throw new CorruptImageException(name, VhdxFields.REGION_TABLE_OFFSETS[0], "the region table lacks the "
                    + (batRegion == null ? "BAT" : "metadata") + " region");
        }
        boolean replayed = false;
        List<VhdxLog.Entry> log = header.hasLog() ? VhdxLog.find(storage, header, headers.currentOffset()) : List.of();
        if (!log.isEmpty()) {
            if (!writable) {
                throw new ReadOnlyImageException(name, header.logOffset(), "VHDX image file '" + name + "' opened "
                        + "read-only, but contains a log that needs to be replayed. To replay the log, run: "
                        + "imago check -r all '" + name + "'");
            }
            replayed = VhdxLog.replay(storage, header, log);
        }
        if (writable && header.hasLog()) {
            headers.setLog(VhdxFields.NIL); // replayed, or nothing valid to replay: in both slots
            headers.setLog(VhdxFields.NIL);
        }
        long fileSize = storage.size();
        // read-only, a metadata region cut short by the end of the file reads on as zeroes, as in QEMU; a writable
        // open refuses it, as new blocks go at the end of the file
        if (writable && metaRegion[0] + metaRegion[1] > fileSize) {
            throw new CorruptImageException(name, metaRegion[0], "the metadata region (" + metaRegion[1]
                    + " bytes at " + metaRegion[0] + ") is not inside the file (" + fileSize + " bytes)");
        }
        VhdxMetadata meta = VhdxMetadata.read(storage, metaRegion[0], metaRegion[1]);
        long blocks = (meta.size() + meta.blockSize() - 1) / meta.blockSize();
        long chunkRatio = VhdxBat.chunkRatio(meta.blockSize(), meta.logicalSectorSize());
        VhdxBat bat = VhdxBat.load(storage, batRegion[0], batRegion[1], blocks, chunkRatio, meta.hasParent(),
                writable);
        // QEMU compares with the file's length in whole sectors
        List<String> problems = checkEntries(name, bat, meta, (fileSize + 511) & -512L, used, batRegion[0]);
        if (writable && problems.isEmpty()) {
            checkDisjoint(name, bat, meta.blockSize(), batRegion[0]);
        }
        if (!problems.isEmpty() && !forCheck) {
            throw new CorruptImageException(name, batRegion[0], problems.getFirst());
        }
        String parent = meta.hasParent() ? parentName(name, meta.parentLocator()) : null;
        return new VhdxInstance(storage, writable, meta, bat, batRegion[0], headers, parent, replayed, problems);
    }

    /**
     * Refuses a writable image two of whose BAT entries name overlapping space: a write to one block would change
     * the other (QEMU does not check, and would).
     */
    private static void checkDisjoint(String name, VhdxBat bat, long blockSize, long batOffset)
            throws CorruptImageException {
        long[] starts = new long[bat.length()];
        int n = 0;
        for (long i = 0; i < bat.length(); i++) {
            int state = VhdxBat.state(bat.entry(i));
            if (!bat.isBitmapEntry(i) && (state == VhdxFields.FULLY_PRESENT || state == VhdxFields.PARTIALLY_PRESENT)) {
                starts[n++] = VhdxBat.offset(bat.entry(i));
            }
        }
        java.util.Arrays.sort(starts, 0, n);
        for (int i = 1; i < n; i++) {
            if (starts[i] < starts[i - 1] + blockSize) {
                throw new CorruptImageException(name, batOffset, "two BAT entries name overlapping blocks (at offsets "
                        + starts[i - 1] + " and " + starts[i] + "); refusing to write to this image");
            }
        }
    }

    private static VhdxRegionTable regionTable(Storage storage) throws IOException {
        CorruptImageException first = null;
        for (long at : VhdxFields.REGION_TABLE_OFFSETS) {
            ByteBuffer b = VhdxFields.le(VhdxFields.REGION_TABLE_LENGTH);
            storage.read(b, at);
            if (b.hasRemaining()) {
                throw new CorruptImageException(storage.name(), at + b.position(), "file ends inside the region "
                        + "table");
            }
            try {
                return VhdxRegionTable.parse(b, storage.name(), at);
            } catch (CorruptImageException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        throw first;
    }

    /**
     * What is wrong with the BAT's entries: states the format does not have, blocks past the end of the file (QEMU's
     * message) or over the headers, the log or a region.
     */
    private static List<String> checkEntries(String name, VhdxBat bat, VhdxMetadata meta, long fileSize,
            List<long[]> used, long batOffset) {
        List<String> out = new ArrayList<>();
        long blockSize = meta.blockSize();
        for (long i = 0; i < bat.length() && out.size() < 100; i++) {
            long e = bat.entry(i);
            int state = VhdxBat.state(e);
            long offset = VhdxBat.offset(e);
            long span;
            if (bat.isBitmapEntry(i)) {
                if (state != VhdxFields.NOT_PRESENT && state != VhdxFields.BITMAP_PRESENT) {
                    out.add("VHDX BAT entry " + i + " (at offset " + (batOffset + 8 * i) + ") has the invalid sector "
                            + "bitmap state " + state);
                    continue;
                }
                if (state != VhdxFields.BITMAP_PRESENT || !meta.hasParent()) {
                    continue;
                }
                span = VhdxFields.SECTOR_BITMAP_BLOCK;
            } else {
                if (state == 4 || state == 5 || state == VhdxFields.PARTIALLY_PRESENT && !meta.hasParent()) {
                    out.add("VHDX BAT entry " + i + " (at offset " + (batOffset + 8 * i) + ") has the invalid payload "
                            + "block state " + state);
                    continue;
                }
                if (state != VhdxFields.FULLY_PRESENT && state != VhdxFields.PARTIALLY_PRESENT) {
                    continue;
                }
                long block = i - i / (bat.chunkRatio() + 1);
                if (block >= bat.payloadBlocks()) {
                    continue; // a differencing disk's last chunk has entries past the disk's end
                }
                span = Math.min(blockSize, meta.size() - block * blockSize);
                if (state == VhdxFields.PARTIALLY_PRESENT && VhdxBat.state(bat.entry(bat.bitmapIndex(block)))
                        != VhdxFields.BITMAP_PRESENT) {
                    out.add("VHDX BAT entry " + i + " is partially present, but its chunk has no sector bitmap");
                    continue;
                }
            }
            if (offset >= fileSize) {
                out.add("VHDX BAT entry " + i + " start offset " + offset + " points after end of file (" + fileSize
                        + "). Image has probably been truncated.");
            } else if (offset + span > fileSize) {
                out.add("VHDX BAT entry " + i + " end offset " + (offset + span - 1) + " points after end of file ("
                        + fileSize + "). Image has probably been truncated.");
            } else {
                for (long[] u : used) {
                    if (offset < u[1] && u[0] < offset + span) {
                        out.add("VHDX BAT entry " + i + " names a block at offset " + offset + " over the headers, "
                                + "the log or a region (" + u[0] + ".." + u[1] + ")");
                        break;
                    }
                }
            }
        }
        return out;
    }

    /**
     * The parent's name from the locator: {@code relative_path}, else the file name of {@code absolute_win32_path}
     * (looked for beside this image), as a path with forward slashes; device, UNC and volume paths are refused. The
     * probe module resolves it against this image's location and asks the {@link imago.api.OpenGate}.
     */
    static String parentName(String name, Map<String, String> locator) throws IOException {
        String rel = locator.get("relative_path");
        if (rel != null) {
            String p = rel.replace('\\', '/');
            while (p.startsWith("./")) {
                p = p.substring(2);
            }
            if (p.isEmpty() || p.startsWith("/") || p.length() > 1 && p.charAt(1) == ':' || p.contains("//")) {
                throw new UnsupportedFeatureException(name, Feature.OTHER, "vhdx parent path",
                        "the parent locator's relative_path \"" + rel + "\" is not a relative path");
            }
            return p;
        }
        String abs = locator.get("absolute_win32_path");
        if (abs != null) {
            if (abs.startsWith("\\\\") || abs.length() < 4 || abs.charAt(1) != ':' || abs.charAt(2) != '\\') {
                throw new UnsupportedFeatureException(name, Feature.OTHER, "vhdx parent path",
                        "the parent locator's absolute_win32_path \"" + abs + "\" is a device, UNC or volume path");
            }
            String file = abs.substring(abs.lastIndexOf('\\') + 1);
            if (file.isEmpty() || file.equals("..") || file.equals(".")) {
                throw new UnsupportedFeatureException(name, Feature.OTHER, "vhdx parent path",
                        "the parent locator's absolute_win32_path \"" + abs + "\" names no file");
            }
            return file;
        }
        throw new CorruptImageException(name, "the parent locator has neither relative_path nor absolute_win32_path");
    }
}
