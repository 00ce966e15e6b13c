package imago.cow.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Recognises cow headers (pure, for probing) and decides which variant a header is (with the file's
 * size, for opening).
 *
 * <p>Version 2 is ambiguous by design: QEMU's 64-bit and 32-bit builds and UML all wrote "version 2"
 * headers of different layouts. Every candidate layout is parsed; a candidate survives if its fields are
 * valid and its bitmap fits in the file. If several survive, the weaker signs each writer leaves decide:
 * QEMU wrote sizes in whole sectors and zeroed the 64-bit layout's padding, UML extended the file to
 * the end of the data area. QEMU also left its file exactly as long as header and bitmap, or (once data
 * was written) ending inside the data area. If that still leaves none or several, the header is
 * corrupt: a guess could read the wrong bytes as data.
 */
final class CowHeaders {
    /** The largest header, UML's "v3 broken". */
    static final int MAX_HEADER = CowHeaderUmlV3.LENGTH_BROKEN;

    private CowHeaders() {
    }

    /** Whether {@code head} starts with the magic and a known version (v1 in either byte order). */
    static boolean recognised(ByteBuffer head) {
        if (head.remaining() < 8) {
            return false;
        }
        int p = head.position();
        ByteBuffer be = head.duplicate().order(ByteOrder.BIG_ENDIAN);
        if (be.getInt(p) == CowHeader.MAGIC) {
            int version = be.getInt(p + 4);
            return version >= 1 && version <= 3;
        }
        // UML v1 headers are in host byte order: a little-endian host wrote magic and version reversed
        ByteBuffer le = head.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        return le.getInt(p) == CowHeader.MAGIC && le.getInt(p + 4) == 1;
    }

    /**
     * The header in {@code head} (the file's first bytes, absolute indices from 0, limit = bytes read)
     * of a file of {@code fileSize} bytes.
     *
     * @throws CorruptImageException if it is not a cow header, no variant's layout fits it, or several do
     */
    static CowHeader detect(ByteBuffer head, long fileSize, String resource) throws CorruptImageException {
        ByteBuffer h = head.duplicate().clear().limit((int) Math.min(head.limit(), Math.max(0, fileSize)));
        h = h.slice();
        if (!recognised(h)) {
            throw new CorruptImageException(resource, 0, "not a cow image: no \"MOOO\" magic with version 1, 2 or 3");
        }
        ByteBuffer be = h.duplicate().order(ByteOrder.BIG_ENDIAN);
        if (be.getInt(0) != CowHeader.MAGIC) {
            return fits(CowHeaderUmlV1.parse(h, ByteOrder.LITTLE_ENDIAN, resource), fileSize, resource);
        }
        return switch (be.getInt(4)) {
            case 1 -> fits(CowHeaderUmlV1.parse(h, ByteOrder.BIG_ENDIAN, resource), fileSize, resource);
            case 2 -> version2(h, fileSize, resource);
            default -> version3(h, fileSize, resource);
        };
    }

    /** A candidate layout: the header it parses to, or why it does not fit. */
    private record Candidate(CowHeader header, CorruptImageException failure) {
    }

    private static Candidate attempt(Parser p, long fileSize, String resource) {
        try {
            return new Candidate(fits(p.parse(), fileSize, resource), null);
        } catch (CorruptImageException e) {
            return new Candidate(null, e);
        }
    }

    @FunctionalInterface
    private interface Parser {
        CowHeader parse() throws CorruptImageException;
    }

    private static CowHeader version2(ByteBuffer h, long fileSize, String resource) throws CorruptImageException {
        Candidate q64 = attempt(() -> CowHeaderQemuV2.parse(h, false, resource), fileSize, resource);
        Candidate q32 = attempt(() -> CowHeaderQemuV2.parse(h, true, resource), fileSize, resource);
        Candidate uml = attempt(() -> CowHeaderUmlV2.parse(h, resource), fileSize, resource);
        List<CowHeader> valid = new ArrayList<>();
        for (Candidate c : List.of(q64, q32, uml)) {
            if (c.header() != null) {
                valid.add(c.header());
            }
        }
        if (valid.size() == 1) {
            return valid.getFirst();
        }
        if (valid.isEmpty()) {
            // report the layout the header most looks like: the one whose sector size field says 512
            ByteBuffer be = h.duplicate().order(ByteOrder.BIG_ENDIAN);
            for (int i = 0; i < 3; i++) {
                int at = i == 0 ? CowHeaderQemuV2.sectorSizeOffset(false) : i == 1
                        ? CowHeaderQemuV2.sectorSizeOffset(true) : CowHeaderUmlV2.SECTOR_SIZE_OFFSET;
                if (be.limit() >= at + 4 && be.getInt(at) == CowFields.SECTOR) {
                    throw List.of(q64, q32, uml).get(i).failure();
                }
            }
            throw q64.failure();
        }
        List<CowHeader> likely = valid.stream().filter(c -> likely(c, h, fileSize)).toList();
        if (likely.size() == 1) {
            return likely.getFirst();
        }
        throw new CorruptImageException(resource, 0, "ambiguous version 2 cow header: it is consistent with the "
                + valid.stream().map(c -> c.variant().displayName()).collect(Collectors.joining(" and "))
                + " layouts");
    }

    /** The weaker signs of each writer (see the class comment). */
    private static boolean likely(CowHeader c, ByteBuffer h, long fileSize) {
        return switch (c) {
            case CowHeaderQemuV2 q -> q.size() % CowFields.SECTOR == 0
                    && (q.bits32() || h.duplicate().order(ByteOrder.BIG_ENDIAN).getInt(1036) == 0)
                    && (fileSize == q.bitmapOffset() + q.bitmapLength()
                            || fileSize > q.dataOffset() && fileSize <= q.dataOffset() + q.size());
            case CowHeaderUmlV2 u -> fileSize >= u.dataOffset() + u.size();
            default -> true;
        };
    }

    /**
     * UML's own rule: a v3 header whose name field (at 32) starts with four zero bytes is "v3 broken",
     * where those bytes are cow_format. A v3 header with an empty name is misread by that rule; it shows
     * as a broken header whose alignment (v3's cow_format) is 0 and whose size (v3's sector size and
     * alignment) is so large that not even a bitmap of one bit per 4 KiB would fit the file. Only then
     * is the packed layout tried instead.
     */
    private static CowHeader version3(ByteBuffer h, long fileSize, String resource) throws CorruptImageException {
        ByteBuffer be = h.duplicate().order(ByteOrder.BIG_ENDIAN);
        boolean broken = h.limit() >= 36 && be.getInt(32) == 0;
        Candidate first = attempt(() -> CowHeaderUmlV3.parse(h, broken, resource), fileSize, resource);
        if (first.header() != null) {
            return first.header();
        }
        boolean emptyNameV3 = broken && h.limit() >= CowHeaderUmlV3.LENGTH_BROKEN
                && be.getInt(CowHeaderUmlV3.alignmentOffset(true)) == 0
                && Long.compareUnsigned(be.getLong(CowHeaderUmlV3.sizeOffset(true)) / 4096, fileSize) > 0;
        if (emptyNameV3) {
            Candidate v3 = attempt(() -> CowHeaderUmlV3.parse(h, false, resource), fileSize, resource);
            if (v3.header() != null) {
                return v3.header();
            }
        }
        throw first.failure();
    }

    /**
     * Checks that the bitmap lies within the file: every writer created the file at least that long.
     *
     * @throws CorruptImageException if it does not
     */
    static CowHeader fits(CowHeader h, long fileSize, String resource) throws CorruptImageException {
        long end = h.bitmapOffset() + h.bitmapLength();
        if (fileSize < end) {
            throw new CorruptImageException(resource, h.bitmapOffset(), "file is " + fileSize
                    + " bytes long, shorter than its " + h.variant().displayName() + " bitmap of "
                    + h.bitmapLength() + " bytes, which ends at " + end);
        }
        return h;
    }
}
