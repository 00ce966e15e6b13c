package imago.vmdk.internal;

import imago.api.Mapping;
import imago.api.spi.BackingReader;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.OptionalInt;

/**
 * One extent of an open image: a run of guest bytes kept in one way (a flat file, a sparse file, nothing). Offsets
 * are relative to the extent's start; {@code base} is that start in guest bytes, for the mappings it returns.
 */
sealed interface VmdkExtent permits VmdkFlatExtent, VmdkZeroExtent, VmdkNoAccessExtent, VmdkSparseExtent,
        VmdkSeSparseExtent {

    /** The extent's size in bytes. */
    long size();

    /**
     * How the bytes from {@code offset} (at most {@code maxLength}, inside the extent) are kept, as a mapping in
     * guest offsets (starting at {@code base + offset}).
     *
     * @throws IOException if metadata cannot be read or is corrupt
     */
    Mapping mapping(long base, long offset, long maxLength) throws IOException;

    /**
     * Begins a write of the bytes from {@code offset} (at most {@code length}, inside the extent).
     *
     * @throws IOException if the extent cannot be written there
     */
    WriteTicket beginWrite(long base, long offset, long length, BackingReader below) throws IOException;

    /**
     * Makes bytes from {@code offset} read as zero by metadata alone and returns how many; 0 when it cannot.
     *
     * @throws IOException if the metadata cannot be changed
     */
    default long ensureZero(long offset, long length) throws IOException {
        return 0;
    }

    /**
     * Decodes the guest bytes from {@code offset} of a {@link Mapping.Special} mapping this extent returned.
     *
     * @throws IOException if they cannot be decoded
     */
    default void readSpecial(ByteBuffer dst, long offset) throws IOException {
        throw new UnsupportedOperationException("this extent returns no special mappings");
    }

    /** Writes what the extent caches. @throws IOException if a write fails */
    default void flush() throws IOException {
    }

    /** The file the extent lives in, or {@code null} for none. */
    Storage storage();

    /** The allocation unit (grain) of a sparse extent. */
    default OptionalInt grainSize() {
        return OptionalInt.empty();
    }

    /** Whether guest bytes map linearly into a file. */
    default boolean flat() {
        return false;
    }

    /** Whether grains are stored compressed (streamOptimized). */
    default boolean compressed() {
        return false;
    }

    /**
     * The extent as {@code qemu-img info} lists it ({@code VmdkExtentInfo}: filename, format, virtual-size,
     * cluster-size and compressed when they apply).
     *
     * @param format the extent type as the descriptor names it, or "" for a monolithic image
     */
    Map<String, Object> info(String format);
}
