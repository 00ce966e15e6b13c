package imago.raw.internal;

import java.util.Map;
import java.util.OptionalLong;

/**
 * The part of the storage a raw image is (QEMU raw's open options {@code offset} and {@code size}): from {@code
 * offset}, {@code size} bytes if given, else the rest of the storage.
 *
 * @param offset where the image starts in the storage
 * @param size the image's size if given (a multiple of 512 that fits in the storage after {@code offset})
 */
record RawWindow(long offset, OptionalLong size) {
    /** The open option naming where the image starts. */
    static final String OFFSET = "offset";
    /** The open option naming the image's size. */
    static final String SIZE = "size";
    /** The whole storage. */
    static final RawWindow WHOLE = new RawWindow(0, OptionalLong.empty());

    /**
     * The window {@code options} ask for in a storage of {@code storageSize} bytes, checked as QEMU 7.2's raw driver
     * checks it, in its order and words: the offset inside the storage, the window inside the storage, the size in
     * whole sectors.
     *
     * @throws IllegalArgumentException if a value is not a decimal number of bytes below 2^64, or the window does not
     *     fit
     */
    static RawWindow of(Map<String, String> options, long storageSize) {
        String offsetText = options.get(OFFSET);
        String sizeText = options.get(SIZE);
        if (offsetText == null && sizeText == null) {
            return WHOLE;
        }
        // unsigned: QEMU takes up to 2^64 - 1 and then finds it past the end of the file
        long offset = offsetText == null ? 0 : bytes(OFFSET, offsetText);
        if (Long.compareUnsigned(offset, storageSize) > 0) {
            throw new IllegalArgumentException("Offset (" + Long.toUnsignedString(offset) + ") cannot be greater "
                    + "than size of the containing file (" + storageSize + ")");
        }
        if (sizeText == null) {
            return new RawWindow(offset, OptionalLong.empty());
        }
        long size = bytes(SIZE, sizeText);
        if (Long.compareUnsigned(size, storageSize - offset) > 0) {
            // two spaces before "actual", as QEMU words it
            throw new IllegalArgumentException("The sum of offset (" + offset + ") and size ("
                    + Long.toUnsignedString(size) + ") has to be smaller or equal to the  actual size of the "
                    + "containing file (" + storageSize + ")");
        }
        if (size % RawInstance.SECTOR != 0) {
            throw new IllegalArgumentException("Specified size is not multiple of " + RawInstance.SECTOR);
        }
        return new RawWindow(offset, OptionalLong.of(size));
    }

    /**
     * A number of bytes in decimal digits, up to 2^64 - 1 (QEMU's suffixes and hex are the caller's to turn into
     * digits: the CLI reads them as qemu does).
     */
    private static long bytes(String name, String text) {
        if (!text.isEmpty() && text.chars().allMatch(c -> c >= '0' && c <= '9')) {
            try {
                return Long.parseUnsignedLong(text);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("Value '" + text + "' is out of range for parameter '" + name
                        + "'", e);
            }
        }
        throw new IllegalArgumentException("Parameter '" + name + "' expects a non-negative number below 2^64\n"
                + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                + "and exabytes, respectively.");
    }
}
