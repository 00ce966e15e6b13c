package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Images whose size is not a multiple of 512 bytes, through qemu-img/qemu-io 7.2 and imago on the same
 * steps. QEMU counts sizes in whole sectors: a raw file's virtual size is its length rounded up (the tail
 * of the last sector reads as zeroes and is mapped as a zero extent), a raw or qcow2 image is created
 * rounded up, a raw resize sets the file to the exact length, and a qcow2 header size is rounded down.
 * Skipped without qemu, failed without it under IMAGO_REQUIRE_QEMU=1.
 */
class UnalignedSizeDifferentialTest {
    private static final Pattern TIMING = Pattern.compile("(?m)^(.*, \\d+ ops; ).*$");
    private static final Pattern VIRTUAL_SIZE = Pattern.compile("\"virtual-size\": (\\d+)");

    @TempDir
    Path dir;

    private Path qemuImg;
    private Path qemuIo;

    private void needQemu() {
        qemuImg = Qemu.img();
        qemuIo = Qemu.io();
    }

    /** Same exit status and standard output as qemu-img, and the same standard error on success. */
    private void same(String... args) {
        List<Object> cmd = new ArrayList<>(List.of(qemuImg));
        cmd.addAll(List.of(args));
        Qemu.Output theirs = Qemu.run(dir, cmd.toArray());
        Run.Result ours = imago(args);
        String what = String.join(" ", args);
        assertEquals(theirs.status(), ours.status(), () -> what + "\nqemu: " + theirs.err() + "\nimago: " + ours.err());
        assertEquals(theirs.out(), ours.out(), what);
        if (theirs.status() == 0) {
            assertEquals(theirs.err(), ours.err(), what);
        }
    }

    /** A file of {@code length} seeded random bytes (a raw image no tool created). */
    private Path randomFile(String name, int length, long seed) throws IOException {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        return Files.write(dir.resolve(name), bytes);
    }

    private Path filledFile(String name, int length, int value) throws IOException {
        byte[] bytes = new byte[length];
        Arrays.fill(bytes, (byte) value);
        return Files.write(dir.resolve(name), bytes);
    }

    private long virtualSize(Path file) {
        String json = Qemu.ok(dir, qemuImg, "info", "--output=json", file);
        Matcher m = VIRTUAL_SIZE.matcher(json);
        if (!m.find()) {
            throw new AssertionError("no virtual-size in " + json);
        }
        return Long.parseLong(m.group(1));
    }

    private static void identical(Path a, Path b) throws IOException {
        long sizeA = Files.size(a);
        long sizeB = Files.size(b);
        assertEquals(-1, Files.mismatch(a, b), () -> a + " and " + b + " differ: " + sizeA + " vs " + sizeB + " bytes");
    }

    @Test
    void createRoundsARawSizeUpToWholeSectors() throws IOException {
        needQemu();
        for (String size : List.of("1", "100", "1234", "1000k", "65537")) {
            Path theirs = dir.resolve("theirs-" + size + ".img");
            Path ours = dir.resolve("ours-" + size + ".img");
            Qemu.ok(dir, qemuImg, "create", "-q", "-f", "raw", theirs, size);
            imago("create", "-q", "-f", "raw", ours.toString(), size).ok();
            assertEquals(Files.size(theirs), Files.size(ours), size);
            assertEquals(virtualSize(theirs), virtualSize(ours), size);
            assertEquals(0, Files.size(ours) % 512, size);
            // qemu's file driver writes the first block of a new image (allocate_first_block): map shows it
            assertEquals(Qemu.ok(dir, qemuImg, "map", "--output=json", theirs),
                    Qemu.ok(dir, qemuImg, "map", "--output=json", ours), size);
        }
        for (String prealloc : List.of("off", "falloc", "full")) {
            Path theirs = dir.resolve("theirs-" + prealloc + ".img");
            Path ours = dir.resolve("ours-" + prealloc + ".img");
            Qemu.ok(dir, qemuImg, "create", "-q", "-f", "raw", "-o", "preallocation=" + prealloc, theirs, "1M");
            imago("create", "-q", "-f", "raw", "-o", "preallocation=" + prealloc, ours.toString(), "1M").ok();
            assertEquals(Qemu.ok(dir, qemuImg, "map", "--output=json", theirs),
                    Qemu.ok(dir, qemuImg, "map", "--output=json", ours), prealloc);
        }
    }

    @Test
    void infoAndMapOfARawFileWithAPartialLastSector() throws IOException {
        needQemu();
        String data = randomFile("data.img", 65537, 1).toString();
        String sparse = dir.resolve("sparse.img").toString();
        try (RandomAccessFile raf = new RandomAccessFile(sparse, "rw")) {
            raf.setLength(320);
        }
        String tail = dir.resolve("tail.img").toString();
        try (RandomAccessFile raf = new RandomAccessFile(tail, "rw")) {
            raf.setLength(8192 + 100);
            raf.seek(8192 + 7);
            raf.write(9);
        }
        for (String f : List.of(data, sparse, tail)) {
            same("info", "--output=json", f);
            same("info", f);
            same("map", "--output=json", f);
            same("map", "-f", "raw", f);
            same("map", "--output=json", "--start-offset=320", f);
        }
    }

    @Test
    void ioReadsAndWritesTheLastSectorLikeQemuIo() throws IOException {
        needQemu();
        List<String> reads = List.of("read -P 1 0 320", "read -P 0 320 192", "read -P 0 511 1", "read 0 512",
                "read -v 256 256", "read 0 513", "read 512 1", "length");
        Path theirs = filledFile("theirs.img", 320, 1);
        for (String c : reads) {
            sameIo(theirs, theirs, c);
        }
        List<List<String>> writes = List.of(List.of("write -P 2 0 512"), List.of("write -P 2 400 16"),
                List.of("write -P 2 300 16"), List.of("write -P 2 318 4", "read -P 2 318 4", "read -P 0 322 190"),
                List.of("write -z 0 512"), List.of("write -z 256 256"), List.of("discard 0 512"),
                List.of("write -P 2 512 1"), List.of("write -P 2 500 13"), List.of("truncate 400", "length"),
                List.of("truncate 1000", "length", "read -P 0 320 704"), List.of("write -P 3 0 320", "length"));
        for (List<String> steps : writes) {
            Path q = filledFile("q.img", 320, 1);
            Path m = filledFile("m.img", 320, 1);
            for (String c : steps) {
                sameIo(q, m, c);
            }
            identical(q, m);
            assertEquals(virtualSize(q), virtualSize(m), steps.toString());
            same("map", "--output=json", m.toString());
            Qemu.Output compare = Qemu.run(dir, qemuImg, "compare", "-f", "raw", "-F", "raw", q, m);
            assertEquals(0, compare.status(), steps + ": " + compare.out() + compare.err());
        }
    }

    /** The same command through qemu-io on {@code theirs} and imago io on {@code ours}: same status and output. */
    private void sameIo(Path theirs, Path ours, String command) {
        Qemu.Output q = Qemu.run(dir, qemuIo, "-f", "raw", "-c", command, theirs);
        Run.Result m = imago("io", "-f", "raw", "-c", command, ours.toString());
        assertEquals(q.status(), m.status(), command);
        assertEquals(TIMING.matcher(q.out()).replaceAll("$1"), TIMING.matcher(m.out()).replaceAll("$1"), command);
        assertEquals(q.err().replace(theirs.toString(), ours.toString()), m.err(), command);
    }

    @Test
    void convertCompareAndBackingOfAPartialLastSector() throws IOException {
        needQemu();
        Path short320 = filledFile("short.img", 320, 1);
        Path full512 = dir.resolve("full.img");
        Files.write(full512, ByteBuffer.allocate(512).put(Files.readAllBytes(short320)).array());
        same("compare", short320.toString(), full512.toString());
        same("compare", full512.toString(), short320.toString());
        same("compare", "-s", short320.toString(), full512.toString());
        for (String format : List.of("qcow2", "raw")) {
            Path theirs = dir.resolve("theirs." + format);
            Path ours = dir.resolve("ours." + format);
            Qemu.ok(dir, qemuImg, "convert", "-f", "raw", "-O", format, short320, theirs);
            imago("convert", "-f", "raw", "-O", format, short320.toString(), ours.toString()).ok();
            assertEquals(virtualSize(theirs), virtualSize(ours), format);
            same("compare", "-f", format, "-F", format, theirs.toString(), ours.toString());
            same("map", "--output=json", "-f", format, ours.toString());
            Path theirsBack = dir.resolve("theirs-back-" + format + ".img");
            Path oursBack = dir.resolve("ours-back-" + format + ".img");
            Qemu.ok(dir, qemuImg, "convert", "-f", format, "-O", "raw", theirs, theirsBack);
            imago("convert", "-f", format, "-O", "raw", ours.toString(), oursBack.toString()).ok();
            identical(theirsBack, oursBack);
            identical(full512, oursBack);
        }
        // an overlay over the short raw file takes its rounded size and reads its zero-padded tail
        Path theirsTop = dir.resolve("theirs-top.qcow2");
        Path oursTop = dir.resolve("ours-top.qcow2");
        Qemu.ok(dir, qemuImg, "create", "-q", "-f", "qcow2", "-b", short320, "-F", "raw", theirsTop);
        imago("create", "-q", "-f", "qcow2", "-b", short320.toString(), "-F", "raw", oursTop.toString()).ok();
        assertEquals(virtualSize(theirsTop), virtualSize(oursTop));
        same("map", "--output=json", oursTop.toString());
        same("info", "--backing-chain", "--output=json", short320.toString());
        same("compare", oursTop.toString(), full512.toString());
    }

    @Test
    void resizeOfARawFileSetsTheExactLengthAndComparesWithTheRoundedSize() throws IOException {
        needQemu();
        List<List<String>> steps = List.of(List.of("1000"), List.of("1000", "1020"), List.of("1000", "1024"),
                List.of("1000", "--shrink", "700"), List.of("1000", "--shrink", "700", "+100"),
                List.of("--shrink", "300", "400"), List.of("--shrink", "300", "--shrink", "330"));
        for (List<String> resizes : steps) {
            Path q = filledFile("rq.img", 512, 1);
            Path m = filledFile("rm.img", 512, 1);
            for (int i = 0; i < resizes.size(); i++) {
                boolean shrink = resizes.get(i).equals("--shrink");
                String size = resizes.get(shrink ? ++i : i);
                List<String> args = new ArrayList<>(List.of("resize", "-f", "raw"));
                if (shrink) {
                    args.add("--shrink");
                }
                args.add(q.toString());
                args.add("--");
                args.add(size);
                List<Object> theirs = new ArrayList<>(List.of(qemuImg));
                theirs.addAll(args);
                Qemu.Output qo = Qemu.run(dir, theirs.toArray());
                args.set(args.size() - 3, m.toString());
                Run.Result mo = imago(args.toArray(String[]::new));
                assertEquals(qo.status(), mo.status(), () -> resizes + "\nqemu: " + qo.err() + "\nimago: " + mo.err());
                assertEquals(qo.out(), mo.out(), resizes.toString());
            }
            identical(q, m);
            assertEquals(virtualSize(q), virtualSize(m), resizes.toString());
            same("info", "--output=json", "-f", "raw", m.toString());
        }
    }

    /** QEMU counts a qcow2 image in whole sectors: a header size that is not a multiple of 512 is rounded down. */
    @Test
    void qcow2HeaderSizeIsRoundedDownToWholeSectors() throws IOException {
        needQemu();
        String created = dir.resolve("created.qcow2").toString();
        same("create", "-f", "qcow2", created, "1234");
        same("info", "--output=json", created);
        same("resize", created, "2000");
        same("resize", created, "--", "+100");
        for (long headerSize : new long[] {1234, 100, 65536 + 1}) {
            Path q = dir.resolve("odd-" + headerSize + ".qcow2");
            Qemu.ok(dir, qemuImg, "create", "-q", "-f", "qcow2", q, "128k");
            Qemu.ok(dir, qemuIo, "-f", "qcow2", "-c", "write -P 5 0 128k", q);
            try (RandomAccessFile raf = new RandomAccessFile(q.toFile(), "rw")) {
                raf.seek(24);
                raf.writeLong(headerSize);
            }
            same("info", "--output=json", q.toString());
            same("map", "--output=json", q.toString());
            same("check", q.toString());
            same("check", "--output=json", q.toString());
            long rounded = headerSize / 512 * 512;
            for (String c : List.of("length", "read -P 5 0 " + rounded, "read 0 " + (rounded + 1),
                    "write -P 6 0 " + rounded)) {
                Path copy = Files.copy(q, dir.resolve("copy.qcow2"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                Qemu.Output qo = Qemu.run(dir, qemuIo, "-f", "qcow2", "-c", c, q);
                Run.Result mo = imago("io", "-f", "qcow2", "-c", c, copy.toString());
                assertEquals(qo.status(), mo.status(), c);
                assertEquals(TIMING.matcher(qo.out()).replaceAll("$1"), TIMING.matcher(mo.out()).replaceAll("$1"), c);
                same("compare", q.toString(), copy.toString());
            }
        }
    }
}
