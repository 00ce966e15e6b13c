package imago.vpc.internal;

/**
 * One parent locator entry of the dynamic header: where a platform's name of the parent disk is stored.
 *
 * @param platformCode the four-character platform code ({@code W2ru}, {@code W2ku}, {@code MacX}, ...)
 * @param dataSpace the space reserved (bytes or sectors, depending on the writer)
 * @param dataLength the name's length in bytes
 * @param dataOffset the name's offset in the file
 * @param index the entry's index (0..7) in the header
 */
record VpcParentLocator(String platformCode, long dataSpace, long dataLength, long dataOffset, int index) {
    /** An entry that names nothing. */
    static final String NONE = "\0\0\0\0";
    /** Windows relative path, UTF-16 little-endian. */
    static final String W2RU = "W2ru";
    /** Windows absolute path, UTF-16 little-endian. */
    static final String W2KU = "W2ku";
    /** A file URL, UTF-8. */
    static final String MACX = "MacX";

    /** Whether the entry names anything. */
    boolean used() {
        return !platformCode.equals(NONE) && dataLength > 0;
    }
}
