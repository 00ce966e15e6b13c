package imago.raw.internal;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Measurement;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.spi.Confidence;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;

/** The raw driver: no header, guest bytes are storage bytes. Stateless. */
public final class RawFormatDriver implements FormatDriver {

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public RawFormatDriver() {
    }

    @Override
    public String name() {
        return "raw";
    }

    /** Raw looks at no bytes: any content is a raw image. */
    @Override
    public int probeLength() {
        return 0;
    }

    /** Always {@link Confidence#WEAK}: raw is the fallback, never a positive match. */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return Confidence.WEAK;
    }

    /**
     * Opens {@code storage} as a raw image of the storage's current size, or of the window the open options
     * {@code offset} and {@code size} (decimal bytes) give, as QEMU's raw driver takes them.
     *
     * @throws ReadOnlyImageException if {@code context} asks for writing and the storage is read-only
     * @throws IllegalArgumentException if {@code offset} or {@code size} is not a number of bytes, or the window does
     *     not fit in the storage or is not in whole sectors (QEMU's messages)
     * @throws IOException if the storage size cannot be read
     */
    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        if (context.writable() && storage.readOnly()) {
            throw new ReadOnlyImageException(storage.name(), "cannot open a read-only storage for writing");
        }
        RawWindow window = RawWindow.of(context.options(), storage.size());
        return new RawInstance(storage, context.writable(), context.probed(), window);
    }

    /** Where the image is in the file: {@code offset} and {@code size}, as QEMU's raw driver takes them. */
    @Override
    public Set<String> openOptionNames() {
        return Set.of(RawWindow.OFFSET, RawWindow.SIZE);
    }

    /**
     * Sizes the empty {@code storage} to the requested size rounded up to whole 512-byte sectors (as
     * {@code qemu-img create} does: 1234 bytes make a 1536-byte file) with the requested preallocation. Raw
     * images take no {@code -o} options (preallocation comes from {@link CreateOptions#preallocation()})
     * and cannot record a backing file. The first 4 KiB (or the whole image, if smaller) are written with zeroes,
     * as QEMU's file driver writes them.
     *
     * @throws IllegalArgumentException if no size is given, a backing file or format is given, or any
     *         format option is given
     * @throws imago.api.UnsupportedFeatureException if the storage does not support the preallocation mode
     * @throws IOException if the storage cannot be resized
     */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(options, "options");
        if (options.backingFile().isPresent()) {
            throw new IllegalArgumentException("Backing file not supported for file format 'raw'");
        }
        if (options.backingFormat().isPresent()) {
            throw new IllegalArgumentException("Backing file format not supported for file format 'raw'");
        }
        for (String option : options.formatOptions().keySet()) {
            if (option.equals("preallocation")) {
                throw new IllegalArgumentException("Invalid parameter 'preallocation' for format 'raw': "
                        + "give the preallocation mode as CreateOptions.preallocation, not as a format option");
            }
            throw new IllegalArgumentException("Invalid parameter '" + option + "' for format 'raw' "
                    + "(raw takes no format options)");
        }
        if (options.size().isEmpty()) {
            throw new IllegalArgumentException("Image creation needs a size parameter");
        }
        if (options.preallocation() == Preallocation.METADATA) {
            throw new IllegalArgumentException("Unsupported preallocation mode: metadata");
        }
        long requested = options.size().getAsLong();
        if (requested > Long.MAX_VALUE - (RawInstance.SECTOR - 1)) {
            // qemu-img's words: its rounding up to a sector wraps to a negative length, which ftruncate refuses
            throw new IllegalArgumentException("Could not resize file: Invalid argument");
        }
        long size = RawInstance.sectorAligned(requested);
        storage.resize(size, options.preallocation());
        if (size > 0) {
            // as QEMU's file driver does on create (allocate_first_block): the first block is written, so that
            // a later alignment probe finds data there; map and actual-size then show it as qemu-img does
            storage.write(ByteBuffer.allocate((int) Math.min(FIRST_BLOCK, size)), 0);
        }
    }

    /**
     * {@inheritDoc} As qemu-img 7.2's raw measure: the source's size, or the given size in whole sectors; every
     * byte counts, allocated or not, so both sizes are the same.
     */
    @Override
    public Optional<Measurement> measure(CreateOptions options, Image source) {
        long size;
        if (source != null) {
            size = source.size();
        } else if (options.size().isPresent()) {
            size = RawInstance.sectorAligned(options.size().getAsLong());
        } else {
            throw new IllegalArgumentException("Either --size N or one filename must be specified.");
        }
        return Optional.of(new Measurement(size, size, OptionalLong.empty()));
    }

    /** How much of a new image's start is written with zeroes (QEMU: the page size or the image). */
    private static final int FIRST_BLOCK = 4096;
}
