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
import java.util.ArrayList;
import java.util.List;

/**
 * A test format made of several files, as VMDK's split images are: a text descriptor "TSPLIT" followed by one
 * line per extent, "RW|RDONLY BYTES NAME"; the guest bytes are the extents one after another. The driver opens
 * no file itself: it names each extent as a {@link Dependency.ExtentFile} and receives its storage.
 */
class SplitFormat implements FormatDriver {
    record Line(boolean writable, long bytes, String name) {
    }

    @Override
    public String name() {
        return "tsplit";
    }

    @Override
    public int probeLength() {
        return 6;
    }

    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        byte[] magic = new byte[Math.min(6, head.remaining())];
        head.duplicate().get(magic);
        return new String(magic, StandardCharsets.US_ASCII).equals("TSPLIT") ? Confidence.STRONG : Confidence.NONE;
    }

    /** Writes a descriptor naming {@code lines}. */
    static void write(Path file, List<Line> lines) throws IOException {
        StringBuilder b = new StringBuilder("TSPLIT\n");
        for (Line l : lines) {
            b.append(l.writable() ? "RW " : "RDONLY ").append(l.bytes()).append(' ').append(l.name()).append('\n');
        }
        Files.writeString(file, b);
    }

    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        ByteBuffer all = ByteBuffer.allocate((int) storage.size());
        storage.read(all, 0);
        List<Line> lines = new ArrayList<>();
        for (String l : new String(all.array(), StandardCharsets.US_ASCII).lines().skip(1).toList()) {
            String[] f = l.split(" ", 3);
            lines.add(new Line(f[0].equals("RW"), Long.parseLong(f[1]), f[2]));
        }
        return new Instance(lines, context.writable());
    }

    private static final class Instance implements FormatInstance {
        private final List<Line> lines;
        private final List<Storage> extents = new ArrayList<>();
        private final boolean writable;
        private final long size;

        Instance(List<Line> lines, boolean writable) {
            this.lines = lines;
            this.writable = writable;
            this.size = lines.stream().mapToLong(Line::bytes).sum();
        }

        @Override
        public long size() {
            return size;
        }

        @Override
        public List<Dependency> dependencies() {
            return lines.stream().map(l -> (Dependency) new Dependency.ExtentFile(l.name(), l.writable())).toList();
        }

        @Override
        public void attach(Dependency dependency, Storage storage) {
            extents.add(storage);
        }

        @Override
        public Mapping mapping(long offset, long maxLength) {
            long start = 0;
            for (int i = 0; i < lines.size(); i++) {
                long end = start + lines.get(i).bytes();
                if (offset < end) {
                    return new Mapping.Data(offset, Math.min(maxLength, end - offset), extents.get(i), offset - start);
                }
                start = end;
            }
            return new Mapping.EndOfImage(offset);
        }

        @Override
        public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
            Mapping.Data d = (Mapping.Data) mapping(offset, length);
            if (!writable || d.storage().readOnly()) {
                throw new ReadOnlyImageException(d.storage().name(), "read-only extent");
            }
            return WriteTicket.of(d);
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
    }

    @Override
    public void create(Storage storage, CreateOptions options) {
        throw new UnsupportedOperationException("tests write tsplit descriptors with write()");
    }
}
