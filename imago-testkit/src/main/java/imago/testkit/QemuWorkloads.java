package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.StorageLocation;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * The steps a format's differential tests take both ways, through qemu-img/qemu-io and through imago: creating an
 * image with qemu-img, qemu-io {@code write} commands (a fixed sample, seeded random ones) and the same commands run
 * through an imago {@link Image}, random writes through imago with the qemu-io commands that repeat them, and the
 * checks that qemu-img reads what imago wrote.
 */
public final class QemuWorkloads {
    private static final int SECTOR = 512;

    private QemuWorkloads() {
    }

    /** {@code qemu-img create -q -f format [-o options] file size} in {@code dir} (no {@code -o} when empty). */
    public static void create(Path dir, String format, String options, String file, long size) {
        List<Object> cmd = new ArrayList<>(List.of(Qemu.img(), "create", "-q", "-f", format));
        if (!options.isEmpty()) {
            cmd.add("-o");
            cmd.add(options);
        }
        cmd.add(file);
        cmd.add(size);
        Qemu.ok(dir, cmd.toArray());
    }

    /**
     * A sample of qemu-io commands for an image of at least 8 MiB: a pattern write at the start, a partial one at
     * 3 MiB, 2 MiB of zero writes at 5 MiB, a write across 7 MiB, and the last sector of {@code size}.
     */
    public static List<String> sampleWrites(long size) {
        return List.of("write -P 0xa1 0 64k", "write -P 0xb2 " + (3L << 20) + " 1536",
                "write -z " + (5L << 20) + " " + (2L << 20), "write -P 0xc3 " + ((7L << 20) - SECTOR) + " 4096",
                "write -P 0xd4 " + (size - SECTOR) + " " + SECTOR);
    }

    /**
     * Runs qemu-io on {@code file} (in {@code dir}) as {@code format}, an image of {@code size} bytes: the
     * {@link #sampleWrites} from 8 MiB on, below that one write of {@code 0x5e} over its first sector (or less), and
     * nothing on an empty image.
     */
    public static void qemuWritesSample(Path dir, String format, String file, long size) {
        if (size >= 8L << 20) {
            QemuReads.qemuIo(dir, format, file, sampleWrites(size));
        } else if (size > 0) {
            QemuReads.qemuIo(dir, format, file, List.of("write -P 0x5e 0 " + Math.min(size, SECTOR)));
        }
    }

    /**
     * {@code count} seeded qemu-io commands on an image of {@code size} bytes: each at a random sector, of 1 to
     * {@code maxSectors} sectors (cut at the end), a quarter of them zero writes ({@code write -z}), the rest pattern
     * writes of a random non-zero byte ({@code write -P 0xNN}).
     */
    public static List<String> randomWrites(Random r, long size, int count, int maxSectors) {
        List<String> ops = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long off = (long) SECTOR * r.nextInt((int) (size / SECTOR));
            long len = Math.min(size - off, (long) SECTOR * (1 + r.nextInt(maxSectors)));
            ops.add(r.nextInt(4) == 0 ? "write -z " + off + " " + len
                    : "write -P 0x" + Integer.toHexString(1 + r.nextInt(255)) + " " + off + " " + len);
        }
        return ops;
    }

    /**
     * Runs qemu-io's {@code write -P pattern offset length} and {@code write -z offset length} commands on
     * {@code image} (a pattern in hex or decimal; offsets and lengths in bytes or with a {@code k}, {@code M} or
     * {@code G} suffix), as {@link Image#write} and {@link Image#writeZeroes} with no flags.
     *
     * @throws IllegalArgumentException for any other command
     */
    public static void writeThroughImago(Image image, List<String> commands) throws IOException {
        for (String c : commands) {
            String[] w = c.split(" ");
            boolean zero = w.length == 4 && w[0].equals("write") && w[1].equals("-z");
            if (!zero && !(w.length == 5 && w[0].equals("write") && w[1].equals("-P"))) {
                throw new IllegalArgumentException("not a qemu-io write -P or write -z command: " + c);
            }
            long off = bytes(w[w.length - 2]);
            int len = Math.toIntExact(bytes(w[w.length - 1]));
            if (zero) {
                image.writeZeroes(off, len, Set.of());
            } else {
                byte[] data = new byte[len];
                Arrays.fill(data, (byte) (int) Integer.decode(w[2]));
                image.write(ByteBuffer.wrap(data), off);
            }
        }
    }

    private static long bytes(String s) {
        int shift = switch (s.charAt(s.length() - 1)) {
            case 'k', 'K' -> 10;
            case 'm', 'M' -> 20;
            case 'g', 'G' -> 30;
            default -> 0;
        };
        return Long.parseLong(shift == 0 ? s : s.substring(0, s.length() - 1)) << shift;
    }

    /**
     * What {@link #writeRandomFills} wrote: the guest content it left on a zeroed image, and the qemu-io commands
     * that write the same.
     *
     * @param model the guest content
     * @param commands the same writes as qemu-io {@code write -P} commands, in order
     */
    public record Written(byte[] model, List<String> commands) {
    }

    /**
     * Writes {@code count} seeded runs of one random non-zero byte to {@code image} (of {@code size} bytes, read as
     * zero before), half of them short (up to 700 bytes) and half long (up to 300,000), at any byte offset, flushing
     * after every seventh.
     */
    public static Written writeRandomFills(Image image, Random r, long size, int count) throws IOException {
        byte[] model = new byte[Math.toIntExact(size)];
        List<String> ops = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int len = 1 + r.nextInt(r.nextBoolean() ? 700 : 300_000);
            long off = r.nextLong(size - len + 1);
            byte fill = (byte) (1 + r.nextInt(255));
            byte[] data = new byte[len];
            Arrays.fill(data, fill);
            image.write(ByteBuffer.wrap(data), off);
            System.arraycopy(data, 0, model, (int) off, len);
            ops.add("write -P " + (fill & 0xff) + " " + off + " " + len);
            if (i % 7 == 6) {
                image.flush();
            }
        }
        return new Written(model, ops);
    }

    /**
     * Asserts that qemu-img reads {@code image} (in {@code dir}, of {@code format}), which imago wrote as
     * {@code written} says, as written: {@code qemu-img compare} finds the model, {@code qemu-img check} is clean,
     * the same commands through qemu-io on {@code qemuCopy} (a file in {@code dir} qemu-img created with the same
     * options) leave the same {@code qemu-img map}, and imago reads the image as qemu-img does
     * ({@link QemuReads#assertReadsLikeQemu}).
     */
    public static void assertQemuReadsAsWritten(Path dir, Path image, String format, Written written,
            String qemuCopy) throws IOException {
        assertQemuFindsModel(image, format, written.model());
        QemuReads.qemuIo(dir, format, qemuCopy, written.commands());
        assertEquals(QemuReads.qemuMap(dir, dir.resolve(qemuCopy), format), QemuReads.qemuMap(dir, image, format),
                "qemu-img map of the same writes through qemu-io and through imago");
        QemuReads.assertReadsLikeQemu(dir, image, format);
    }

    /**
     * Asserts that {@code qemu-img compare} finds {@code model} in {@code image} (a raw copy of it written beside the
     * image as {@code model.raw}) and that {@code qemu-img check} finds the image clean.
     */
    public static void assertQemuFindsModel(Path image, String format, byte[] model) throws IOException {
        Path raw = Files.write(image.resolveSibling("model.raw"), model);
        Qemu.Output compare = Qemu.compare(image, format, raw, "raw");
        assertEquals(0, compare.status(), () -> "qemu-img compare with the model\n" + compare.out() + compare.err());
        Qemu.Output check = Qemu.check(image, format);
        assertEquals(0, check.status(), () -> "qemu-img check\n" + check.out() + check.err());
    }

    /**
     * Random fills both ways: imago creates {@code imago.EXT} and qemu-img {@code qemu.EXT} in {@code dir}, both of a
     * seeded size (6 MiB and up to 2 MiB more, in whole sectors) and with the create option {@code key=value}; 25
     * seeded {@linkplain #writeRandomFills fills} go through imago; then {@link #assertQemuReadsAsWritten}.
     *
     * @return imago's file (qemu-io's is {@code qemu.EXT} beside it)
     */
    public static Path assertRandomFillsReadAsWritten(Path dir, String format, String ext, String key, String value,
            long seed) throws IOException {
        Random r = new Random(seed);
        long size = (6L << 20) + (long) SECTOR * r.nextInt(4096);
        Path image = dir.resolve("imago." + ext);
        ProbeApi.create(StorageLocation.file(image), format, CreateOptions.builder().size(size).option(key, value)
                .build());
        create(dir, format, key + "=" + value, "qemu." + ext, size);
        Written written;
        try (Image img = ProbeApi.open(StorageLocation.file(image), format, true)) {
            written = writeRandomFills(img, r, size, 25);
        }
        assertQemuReadsAsWritten(dir, image, format, written, "qemu." + ext);
        return image;
    }

    /**
     * Asserts that imago creates qemu-img's file byte for byte: {@code qemu-img create -f format [-o options]} makes
     * {@code theirs.FORMAT} and {@code Imago.create} with the same options {@code ours.FORMAT} in {@code dir}, of the
     * size {@code spec} gives (bytes, or with an {@code M} or {@code G} suffix), or of 3 MiB over a backing file when
     * {@code spec} is {@code b:NAME:BACKING_FORMAT} (qemu-img creates the backing file first).
     */
    public static void assertCreatesQemuImgsFile(Path dir, String format, String options, String spec)
            throws IOException {
        CreateOptions.Builder ours = CreateOptions.builder();
        List<Object> theirs = new ArrayList<>(List.of(Qemu.img(), "create", "-q", "-f", format));
        if (!options.isEmpty()) {
            theirs.addAll(List.of("-o", options));
            for (String kv : options.split(",")) {
                ours.option(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
            }
        }
        long size;
        if (spec.startsWith("b:")) {
            String[] b = spec.split(":");
            size = 3L << 20;
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", b[2], b[1], size);
            theirs.addAll(List.of("-b", b[1], "-F", b[2]));
            ours.backingFile(b[1]).backingFormat(b[2]);
        } else {
            size = Long.parseLong(spec.replace("M", "").replace("G", "")) << (spec.endsWith("M") ? 20
                    : spec.endsWith("G") ? 30 : 0);
        }
        theirs.addAll(List.of("theirs." + format, size));
        Qemu.ok(dir, theirs.toArray());
        ProbeApi.create(StorageLocation.file(dir.resolve("ours." + format)), format, ours.size(size).build());
        assertArrayEquals(Files.readAllBytes(dir.resolve("theirs." + format)),
                Files.readAllBytes(dir.resolve("ours." + format)), spec);
    }
}
