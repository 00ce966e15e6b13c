package imago.probe;

import imago.api.CreateOptions;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.spi.BackingReader;
import imago.api.spi.Confidence;
import imago.api.spi.Dependency;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * A test format with a backing file: magic "TCHN", u64 size, u16 name length, u16 format length, the
 * backing name and format. The first half of the guest falls to the backing image; the second half is
 * stored from byte 512 on.
 */
class ChainFormat implements FormatDriver {
    static final int HEADER = 512;

    @Override
    public String name() {
        return "tchain";
    }

    @Override
    public int probeLength() {
        return 4;
    }

    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        if (head.remaining() < 4) {
            return Confidence.NONE;
        }
        byte[] magic = new byte[4];
        head.duplicate().get(magic);
        return new String(magic, StandardCharsets.US_ASCII).equals("TCHN") ? Confidence.STRONG : Confidence.NONE;
    }

    /** Writes an image of {@code size} whose second half is filled with {@code fill}. */
    static void write(Path file, long size, String backing, String backingFormat, byte fill) throws IOException {
        byte[] name = backing == null ? new byte[0] : backing.getBytes(StandardCharsets.UTF_8);
        byte[] fmt = backingFormat == null ? new byte[0] : backingFormat.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(HEADER + (int) (size / 2));
        b.put("TCHN".getBytes(StandardCharsets.US_ASCII)).putLong(size).putShort((short) name.length)
                .putShort((short) fmt.length).put(name).put(fmt);
        for (int i = HEADER; i < b.capacity(); i++) {
            b.put(i, fill);
        }
        Files.write(file, b.array());
    }

    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(HEADER);
        storage.read(h, 0);
        long size = h.getLong(4);
        byte[] name = new byte[h.getShort(12)];
        byte[] fmt = new byte[h.getShort(14)];
        h.position(16);
        h.get(name).get(fmt);
        String backing = new String(name, StandardCharsets.UTF_8);
        String format = new String(fmt, StandardCharsets.UTF_8);
        return new FormatInstance() {
            @Override
            public long size() {
                return size;
            }

            @Override
            public Mapping mapping(long offset, long maxLength) {
                long half = size / 2;
                if (offset >= size) {
                    return new Mapping.EndOfImage(offset);
                }
                if (offset < half) {
                    return new Mapping.Unallocated(offset, Math.min(maxLength, half - offset));
                }
                return new Mapping.Data(offset, Math.min(maxLength, size - offset), storage, HEADER + offset - half);
            }

            @Override
            public WriteTicket beginWrite(long offset, long length, BackingReader below)
                    throws IOException {
                throw new ReadOnlyImageException(storage.name(), "tchain images are read-only");
            }

            @Override
            public List<Dependency> dependencies() {
                return backing.isEmpty() ? List.of() : List.of(new Dependency.BackingFile(backing,
                        format.isEmpty() ? Optional.empty() : Optional.of(format)));
            }

            @Override
            public void flush() {
            }

            @Override
            public void sync() {
            }

            @Override
            public void close() {
            }
        };
    }

    @Override
    public void create(Storage storage, CreateOptions options) {
        throw new UnsupportedOperationException("tests write tchain images with write()");
    }
}
