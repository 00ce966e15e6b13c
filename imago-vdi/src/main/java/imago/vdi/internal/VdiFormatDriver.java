package imago.vdi.internal;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.spi.BlockTable;
import imago.api.spi.Confidence;
import imago.api.spi.CreateChecks;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Objects;
import java.util.SequencedMap;
import java.util.Set;
import java.util.UUID;

/**
 * The vdi driver: VirtualBox disk images, version 1.1, dynamic and static, as QEMU 7.2 reads and writes them
 * (1 MiB blocks; no differencing images). Stateless.
 *
 * <p>Create option ({@code -o}): {@code static} = {@code off} (default: blocks are allocated as they are written)
 * or {@code on} (every block allocated, the file as long as the disk). {@code preallocation} (off, falloc, full)
 * is accepted and, as in qemu-img, changes nothing.
 */
public final class VdiFormatDriver implements FormatDriver {
    /** Create option: every block allocated at creation. */
    static final String STATIC = "static";

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public VdiFormatDriver() {
    }

    @Override
    public String name() {
        return "vdi";
    }

    /** QEMU looks at the whole header before it says yes. */
    @Override
    public int probeLength() {
        return VdiHeader.LENGTH;
    }

    /** {@link Confidence#STRONG} for a whole header with the VDI signature (QEMU's probe). */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return head.remaining() >= VdiHeader.LENGTH
                && head.order(ByteOrder.LITTLE_ENDIAN).getInt(head.position() + VdiHeader.SIGNATURE_AT)
                        == VdiHeader.SIGNATURE ? Confidence.STRONG : Confidence.NONE;
    }

    /**
     * Opens a VDI image.
     *
     * @throws CorruptImageException if the header is not a VDI header, the block map or a block lies past the end
     *         of the file, or (writable) two entries name one block
     * @throws imago.api.UnsupportedFeatureException for what QEMU refuses too (versions, block sizes, differencing)
     * @throws imago.api.ImageLimitException if the image or its map is larger than the limits
     * @throws ReadOnlyImageException if writing is asked of a read-only storage
     * @throws IOException if the storage cannot be read
     */
    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        String name = storage.name();
        if (context.writable() && storage.readOnly()) {
            throw new ReadOnlyImageException(name, "cannot open a read-only storage for writing");
        }
        long fileSize = storage.size();
        ByteBuffer head = ByteBuffer.allocate(VdiHeader.LENGTH); // cut short, it reads on as zeroes, as in QEMU
        storage.read(head, 0);
        VdiHeader header = VdiHeader.parse(head.flip(), name);
        VdiInstance instance = new VdiInstance(storage, header, context.writable());
        BlockTable table = instance.table();
        long highest = -1;
        long count = 0;
        BitSet used = context.writable() ? new BitSet() : null;
        for (int block = 0; block < table.length(); block++) {
            int entry = table.get(block);
            if (!VdiInstance.allocated(entry)) {
                continue;
            }
            long index = Integer.toUnsignedLong(entry);
            long end = header.offsetData() + (index + 1) * header.blockSize();
            // a block past the end of the file (a file cut short) reads as zeroes, as QEMU reads it; new blocks go
            // by the count of blocks, not the file's length, so a write never lands on it
            if (used != null) {
                if (index >= header.blocksInImage() || used.get((int) index)) {
                    throw new CorruptImageException(name, header.offsetBmap() + block * 4L, "block map entry "
                            + block + " names block " + index + ", " + (index >= header.blocksInImage()
                                    ? "past the map's " + header.blocksInImage() + " blocks"
                                    : "which another entry names too") + "; refusing to write to this image");
                }
                used.set((int) index);
            }
            highest = Math.max(highest, index);
            count++;
        }
        if (context.writable() && !context.forCheck() && count == highest + 1 && count != header.blocksAllocated()) {
            // a power loss between the count and the entries (or QEMU's own, the other way round): the blocks in
            // use are 0..count-1, so the count can be made true without moving any
            instance.repairCount(count);
        }
        // new blocks go past every block in use, whatever the header's count says
        instance.allocateFrom(highest + 1);
        return instance;
    }

    /**
     * Writes a new image as qemu-img 7.2 does, with two random UUIDs.
     *
     * @throws IllegalArgumentException if no size is given, the size is too large, an option is unknown or invalid,
     *         or a backing file is given
     * @throws IOException if the storage cannot be written
     */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(options, "options");
        CreateChecks.knownOptionsOnly(options, "vdi", List.of(STATIC));
        CreateChecks.noBackingFile(options, "vdi");
        if (!accepts(options.preallocation())) {
            throw new IllegalArgumentException(CreateChecks.unsupportedPreallocation(options.preallocation()));
        }
        long size = CreateChecks.size(options);
        boolean fixed = CreateChecks.onOff(options.formatOptions(), STATIC, false);
        VdiCreate.create(storage, size, fixed, UUID.randomUUID(), UUID.randomUUID());
    }

    @Override
    public Set<String> createOptionNames() {
        return Set.of(STATIC);
    }

    /** {@inheritDoc} qemu-img's order for vdi: size, static (shown as off by default), preallocation. */
    @Override
    public SequencedMap<String, String> formattingOptions(CreateOptions options, String preallocation) {
        SequencedMap<String, String> out = new LinkedHashMap<>();
        options.size().ifPresent(s -> out.put("size", Long.toString(s)));
        CreateChecks.onOff(options.formatOptions(), STATIC, false); // refuses what is not a switch
        out.put(STATIC, options.formatOptions().getOrDefault(STATIC, "off")); // as given (yes stays yes), as qemu-img
        if (preallocation != null) {
            out.put("preallocation", preallocation);
        }
        return out;
    }

    /** The preallocation modes qemu-img accepts for vdi (none changes the file). */
    static boolean accepts(Preallocation p) {
        return p == Preallocation.OFF || p == Preallocation.FALLOC || p == Preallocation.FULL;
    }
}
