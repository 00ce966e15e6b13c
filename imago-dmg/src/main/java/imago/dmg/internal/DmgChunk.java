package imago.dmg.internal;

/**
 * One chunk of a dmg block table, in absolute terms: the guest sectors {@code [firstSector, firstSector +
 * sectorCount)} and where their bytes are in the file.
 *
 * @param type the chunk type ({@link #ZEROES}, {@link #RAW}, ...)
 * @param firstSector the first guest sector
 * @param sectorCount how many sectors it holds
 * @param offset where its bytes start in the file
 * @param length how many bytes it has in the file
 */
record DmgChunk(int type, long firstSector, long sectorCount, long offset, long length) {
    static final int ZEROES = 0;
    static final int RAW = 1;
    static final int IGNORED = 2;
    static final int ADC = 0x8000_0004;
    static final int ZLIB = 0x8000_0005;
    static final int BZIP2 = 0x8000_0006;
    static final int LZFSE = 0x8000_0007;
    static final int COMMENT = 0x7fff_fffe;
    static final int LAST = 0xffff_ffff;

    /** The sector after the chunk. */
    long endSector() {
        return firstSector + sectorCount;
    }

    /** Whether its sectors read as zeroes without reading the file. */
    boolean zeroes() {
        return type == ZEROES || type == IGNORED;
    }

    /** Whether imago reads it (zeroes, ignored, raw and zlib chunks). */
    boolean readable() {
        return zeroes() || type == RAW || type == ZLIB;
    }

    /** The type's name as Apple's tools print it, for messages. */
    static String typeName(int type) {
        return switch (type) {
            case ZEROES -> "zero-fill (UDZE)";
            case RAW -> "raw (UDRW)";
            case IGNORED -> "ignored (UDIG)";
            case ADC -> "ADC-compressed (UDCO)";
            case ZLIB -> "zlib-compressed (UDZO)";
            case BZIP2 -> "bzip2-compressed (UDBZ)";
            case LZFSE -> "lzfse-compressed (ULFO)";
            default -> String.format("unknown (type %08x)", type);
        };
    }
}
