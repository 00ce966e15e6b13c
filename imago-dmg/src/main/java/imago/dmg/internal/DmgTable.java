package imago.dmg.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;

/**
 * A dmg image's trailer and block tables, read and checked: the virtual size and the chunks sorted by guest sector,
 * without overlaps (see the package documentation).
 *
 * @param sectors the virtual size in sectors
 * @param chunks the chunks that hold guest sectors, sorted by first sector
 */
record DmgTable(long sectors, List<DmgChunk> chunks) {
    static final int TRAILER = 512;
    /** QEMU's bound on one chunk's bytes and (but for zeroes) sectors. */
    static final long MAX_CHUNK_BYTES = 64L << 20;
    /** QEMU's bound on the XML property list, which imago applies to the resource fork too. */
    static final long MAX_INFO_BYTES = 16L << 20;
    private static final int MISH = 0x6d69_7368;
    private static final int MISH_HEADER = 204;
    private static final int MISH_MIN = 244;
    private static final int ENTRY = 40;

    /** Reads the trailer and the block tables of {@code storage}. */
    static DmgTable read(Storage storage) throws IOException {
        String resource = storage.name();
        long fileSize = storage.size();
        long koly = findTrailer(storage, fileSize);
        ByteBuffer t = ByteBuffer.allocate(TRAILER);
        storage.read(t, koly);
        long dataFork = t.getLong(0x18);
        long rsrcOffset = t.getLong(0x28);
        long rsrcLength = t.getLong(0x30);
        long xmlOffset = t.getLong(0xd8);
        long xmlLength = t.getLong(0xe0);
        long sectors = t.getLong(0x1ec);
        if (Long.compareUnsigned(dataFork, koly) > 0) {
            throw new CorruptImageException(resource, koly + 0x18, "the data fork offset " + Long.toUnsignedString(
                    dataFork) + " lies past the trailer");
        }
        checkFork(resource, koly, 0x28, rsrcOffset, rsrcLength, "resource fork");
        checkFork(resource, koly, 0xd8, xmlOffset, xmlLength, "XML property list");
        if (sectors < 0) {
            throw new CorruptImageException(resource, koly + 0x1ec, "the sector count " + Long.toUnsignedString(sectors)
                    + " is negative");
        }
        List<DmgChunk> chunks = new ArrayList<>();
        if (rsrcLength != 0) {
            if (rsrcLength > MAX_INFO_BYTES) {
                throw new ImageLimitException(resource, koly + 0x30, "the resource fork is larger than 16 MiB");
            }
            ByteBuffer fork = ByteBuffer.allocate((int) rsrcLength);
            storage.read(fork, rsrcOffset);
            resourceFork(resource, rsrcOffset, fork.flip(), dataFork, chunks);
        } else if (xmlLength != 0) {
            if (xmlLength > MAX_INFO_BYTES) {
                throw new ImageLimitException(resource, koly + 0xe0, "the XML property list is larger than 16 MiB");
            }
            ByteBuffer xml = ByteBuffer.allocate((int) xmlLength);
            storage.read(xml, xmlOffset);
            propertyList(resource, xmlOffset, new String(xml.array(), StandardCharsets.ISO_8859_1), dataFork, chunks);
        } else {
            throw new CorruptImageException(resource, koly + 0x28, "the trailer names neither a resource fork nor an"
                    + " XML property list");
        }
        chunks.sort(Comparator.comparingLong(DmgChunk::firstSector));
        for (int i = 1; i < chunks.size(); i++) {
            if (chunks.get(i).firstSector() < chunks.get(i - 1).endSector()) {
                throw new CorruptImageException(resource, "chunks overlap at sector " + chunks.get(i).firstSector());
            }
        }
        return new DmgTable(sectors, List.copyOf(chunks));
    }

    /**
     * QEMU's search: the magic in the last 511 bytes of the second-last sector or the first 4 of the last, the file's
     * length counted in whole sectors (as QEMU's block layer counts it).
     */
    private static long findTrailer(Storage storage, long fileSize) throws IOException {
        long length512 = Math.ceilDiv(fileSize, TRAILER) * TRAILER;
        if (length512 < TRAILER) {
            throw new CorruptImageException(storage.name(), "dmg file must be at least 512 bytes long");
        }
        long from = length512 > 511 + 512 ? length512 - 511 - 512 : 0;
        int length = (int) Math.min(length512 - from, 515);
        ByteBuffer b = ByteBuffer.allocate(length);
        storage.read(b, from);
        for (int i = 0; i + 3 < length; i++) {
            if (b.get(i) == 'k' && b.get(i + 1) == 'o' && b.get(i + 2) == 'l' && b.get(i + 3) == 'y') {
                if (from + i + TRAILER > length512) {
                    break; // a trailer past the file's last sector
                }
                // one cut short by the end of the file within that sector reads on as zeroes, as in QEMU's block
                // layer, which rounds the file's length up to whole sectors
                return from + i;
            }
        }
        throw new CorruptImageException(storage.name(), from, "Could not locate UDIF trailer in dmg file");
    }

    private static void checkFork(String resource, long koly, int field, long offset, long length, String what)
            throws CorruptImageException {
        if (Long.compareUnsigned(offset, koly) >= 0 || Long.compareUnsigned(length, koly - offset) > 0) {
            throw new CorruptImageException(resource, koly + field, "the " + what + " (" + Long.toUnsignedString(
                    length) + " bytes at " + Long.toUnsignedString(offset) + ") does not lie before the trailer");
        }
    }

    /** The resources of a resource fork: each a length and a block table (or another resource, skipped). */
    private static void resourceFork(String resource, long at, ByteBuffer fork, long dataFork, List<DmgChunk> out)
            throws CorruptImageException {
        long dataOffset = Integer.toUnsignedLong(fork.getInt(0));
        long count = Integer.toUnsignedLong(fork.getInt(8));
        if (dataOffset > fork.limit() || count == 0 || dataOffset + count > fork.limit()) {
            throw new CorruptImageException(resource, at, "the resource fork's data (" + count + " bytes at "
                    + dataOffset + ") does not fit the fork of " + fork.limit() + " bytes");
        }
        int offset = (int) dataOffset;
        int end = (int) (dataOffset + count);
        while (offset < end) {
            if (end - offset < 4) {
                throw new CorruptImageException(resource, at + offset, "a resource's length is cut off");
            }
            long length = Integer.toUnsignedLong(fork.getInt(offset));
            if (length == 0 || length > end - offset - 4) {
                throw new CorruptImageException(resource, at + offset, "a resource of " + length
                        + " bytes does not fit the resource data");
            }
            offset += 4;
            blockTable(resource, at + offset, fork.slice(offset, (int) length), dataFork, out);
            offset += (int) length;
        }
    }

    /** Every {@code <data>} element of the property list, base64-decoded. */
    private static void propertyList(String resource, long at, String xml, long dataFork, List<DmgChunk> out)
            throws CorruptImageException {
        int from = 0;
        while (true) {
            int begin = xml.indexOf("<data>", from);
            if (begin < 0) {
                return;
            }
            int end = xml.indexOf("</data>", begin + 6);
            if (end < 0) {
                throw new CorruptImageException(resource, at + begin, "a <data> element of the property list is not"
                        + " closed");
            }
            byte[] table = base64(xml.substring(begin + 6, end));
            blockTable(resource, at + begin, ByteBuffer.wrap(table), dataFork, out);
            from = end + 7;
        }
    }

    /**
     * {@code text} base64-decoded as QEMU decodes it (glib's decoder): characters outside the alphabet are skipped,
     * and a last character that makes no whole byte is dropped; so damaged text gives damaged bytes (a table QEMU
     * skips, or chunks reads of which fail), not a refusal.
     */
    private static byte[] base64(String text) {
        StringBuilder digits = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
                digits.append(c);
            }
        }
        if (digits.length() % 4 == 1) {
            digits.setLength(digits.length() - 1);
        }
        return Base64.getDecoder().decode(digits.toString()); // unpadded: every group of digits is whole now
    }

    /** One "mish" block table; anything else (too short, another magic) is skipped, as QEMU skips it. */
    private static void blockTable(String resource, long at, ByteBuffer table, long dataFork, List<DmgChunk> out)
            throws CorruptImageException {
        if (table.limit() < MISH_MIN || table.getInt(0) != MISH) {
            return;
        }
        long firstSector = table.getLong(8);
        long dataOffset = dataFork + table.getLong(0x18);
        int entries = (table.limit() - MISH_HEADER) / ENTRY;
        for (int i = 0; i < entries; i++) {
            int e = MISH_HEADER + i * ENTRY;
            int type = table.getInt(e);
            if (type == DmgChunk.COMMENT || type == DmgChunk.LAST) {
                continue;
            }
            long sector = table.getLong(e + 8);
            long count = table.getLong(e + 0x10);
            long offset = table.getLong(e + 0x18);
            long length = table.getLong(e + 0x20);
            boolean zeroes = type == DmgChunk.ZEROES || type == DmgChunk.IGNORED;
            if (!zeroes && Long.compareUnsigned(count, MAX_CHUNK_BYTES / 512) > 0) {
                throw new CorruptImageException(resource, at + e + 0x10, "sector count " + Long.toUnsignedString(count)
                        + " for chunk " + out.size() + " is larger than max (" + MAX_CHUNK_BYTES / 512 + ")");
            }
            if (Long.compareUnsigned(length, MAX_CHUNK_BYTES) > 0) {
                throw new CorruptImageException(resource, at + e + 0x20, "length " + Long.toUnsignedString(length)
                        + " for chunk " + out.size() + " is larger than max (" + MAX_CHUNK_BYTES + ")");
            }
            long first = firstSector + sector;
            long host = dataOffset + offset;
            if (first < 0 || count < 0 || first + count < first || host < 0) {
                throw new CorruptImageException(resource, at + e, "chunk " + out.size() + " lies outside any disk ("
                        + "sector " + Long.toUnsignedString(first) + ", offset " + Long.toUnsignedString(host) + ")");
            }
            if (count > 0) {
                out.add(new DmgChunk(type, first, count, host, length));
            }
        }
    }
}
