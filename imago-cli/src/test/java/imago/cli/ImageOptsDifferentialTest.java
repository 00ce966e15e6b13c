package imago.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import imago.testkit.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code --image-opts} against qemu-img and qemu-io 7.2: every open option is taken as qemu takes it or refused
 * with qemu's words, never ignored. Raw's {@code offset} and {@code size} window the file (info's size and
 * {@code json:} name, map's offsets, reads and writes both ways: what one tool writes through the window the other
 * reads, and no byte outside it changes); options a format does not take, bad values and windows that do not fit are
 * refused as qemu refuses them. Sampled: a few options per format, not every one.
 */
class ImageOptsDifferentialTest {
    private static final int FILE_SIZE = 1 << 20;

    @TempDir
    Path dir;

    @BeforeEach
    void image() throws Exception {
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "raw", "io.raw", "1M");
        Qemu.ok(dir, Qemu.io(), "-f", "raw", "-c", "write -P 0x11 0 512", "-c", "write -P 0x22 512 512",
                "-c", "write -P 0x33 64k 4k", "io.raw");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "q.qcow2", "1M");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "vpc", "v.vpc", "1M");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "1M");
    }

    /** qemu-img SUBCOMMAND ARGS and imago SUBCOMMAND ARGS print the same and exit with the same status. */
    private void sameAsQemuImg(String... args) {
        Qemu.Output theirs = Qemu.runImg(dir, args);
        List<String> ours = new ArrayList<>(Arrays.asList(args));
        Run.Result mine = Run.imago(ours.toArray(String[]::new));
        String what = String.join(" ", args);
        assertEquals(theirs.status(), mine.status(), () -> what + "\nqemu-img: " + theirs.err() + "\nimago: "
                + mine.err());
        assertEquals(theirs.out(), mine.out(), what);
        assertEquals(theirs.err().replace("qemu-img: ", "PROGRAM: "), mine.err().replace("imago: ", "PROGRAM: "),
                what);
    }

    private String opts(String options) {
        return options + ",file.filename=" + dir.resolve("io.raw");
    }

    @ParameterizedTest
    @ValueSource(strings = {"driver=raw,offset=512", "driver=raw,offset=512,size=4096", "driver=raw,size=8k",
        "driver=raw,offset=1k,size=8k", "driver=raw,offset=0x200", "driver=raw,offset=1048576", "offset=64k,size=4k",
        "driver=raw,offset=512,node-name=n1,read-only=on"})
    void infoAndMapOfAWindow(String options) {
        sameAsQemuImg("info", "--image-opts", opts(options));
        sameAsQemuImg("info", "--output=json", "--image-opts", opts(options));
        sameAsQemuImg("map", "--output=json", "--image-opts", opts(options));
        sameAsQemuImg("map", "--image-opts", opts(options));
    }

    /**
     * qemu-io's -s over an option string: its writes go to a temporary overlay; a window's options, which the
     * overlay's backing file would lose, are refused.
     */
    @Test
    void temporaryOverlayOverAnOptionString() throws Exception {
        byte[] before = Files.readAllBytes(dir.resolve("io.raw"));
        sameAsQemuIo(List.of("-s", "--image-opts", "-c", "write -P 0x77 0 512", "-c", "read -P 0x77 0 512",
                opts("driver=raw")));
        assertArrayEquals(before, Files.readAllBytes(dir.resolve("io.raw")));
        Run.Result r = Run.as("qemu-io", "", "-s", "--image-opts", "-c", "write -P 0x77 0 512",
                opts("driver=raw,offset=512"));
        assertEquals(1, r.status(), r.err());
        assertArrayEquals(before, Files.readAllBytes(dir.resolve("io.raw")));
    }

    /** convert copies the window alone, as qemu-img does. */
    @Test
    void convertOfAWindow() throws Exception {
        String window = opts("driver=raw,offset=512,size=64k");
        sameAsQemuImg("convert", "--image-opts", window, "-O", "raw", dir.resolve("theirs.raw").toString());
        Files.move(dir.resolve("theirs.raw"), dir.resolve("qemu.raw"));
        Run.imago("convert", "--image-opts", window, "-O", "raw", dir.resolve("theirs.raw").toString()).ok();
        byte[] ours = Files.readAllBytes(dir.resolve("theirs.raw"));
        assertArrayEquals(Files.readAllBytes(dir.resolve("qemu.raw")), ours);
        assertEquals(0x22, ours[0]);
        assertEquals(64 * 1024, ours.length);
    }

    /** qemu-io's open -o takes the same options, checked the same way. */
    @Test
    void openCommandOptions() {
        String file = dir.resolve("io.raw").toString();
        sameAsQemuIo(List.of("-c", "open -o driver=raw,offset=1k " + file, "-c", "read -P 0 0 512",
                "-c", "read -P 0x33 63k 4k"));
        sameAsQemuIo(List.of("-c", "open -o driver=raw,foo=1 " + file));
        sameAsQemuIo(List.of("-c", "open -o driver=raw,read-only=x " + file));
        sameAsQemuIo(List.of("-c", "open -o driver=raw,size=4k,offset=512,read-only=on " + file,
                "-c", "read -P 0x22 0 512", "-c", "write 0 512"));
    }

    /** A snapshot to load from a format that has none is refused, not ignored (the current state measured). */
    @Test
    void snapshotOfAFormatWithoutSnapshots() {
        sameAsQemuImg("measure", "-l", "snap", "-O", "raw", "-f", "raw", dir.resolve("io.raw").toString());
    }

    /** qcow2's cache sizes are read as sizes, as qemu reads them. */
    @Test
    void cacheSizesTakeSuffixes() {
        sameAsQemuImg("info", "--image-opts", "driver=qcow2,l2-cache-size=1M,cache-size=2M,file.filename="
                + dir.resolve("q.qcow2"));
    }

    /** A window that is not in whole sectors (qemu-img 7.2's map fails an assertion on it, so info only). */
    @Test
    void infoOfAnUnalignedWindow() {
        sameAsQemuImg("info", "--image-opts", opts("driver=raw,offset=511"));
        sameAsQemuIo(List.of("--image-opts", "-c", "read -P 0x11 0 1", "-c", "read -P 0x22 1 512",
                "-c", "read -P 0 1048064 512", opts("driver=raw,offset=511")));
    }

    @ParameterizedTest
    @ValueSource(strings = {"driver=raw,foo=bar", "driver=raw,offset=2M", "driver=raw,offset=abc",
        "driver=raw,offset=-1", "driver=raw,offset=18446744073709551616", "driver=raw,size=100",
        "driver=raw,size=1048577", "driver=raw,offset=512,size=1M", "driver=raw,size=100,offset=100",
        "driver=raw,l2-cache-size=1M", "driver=raw,snapshot=on", "driver=raw,file.foo=bar",
        "driver=raw,cache.writeback=on", "driver=raw,read-only=x", "driver=raw,force-share=x",
        "driver=raw,cache.direct=x", "driver=raw,node-name=#a", "driver=raw,discard=bad",
        "driver=raw,detect-zeroes=bad", "driver=raw,detect-zeroes=unmap", "offset=1,driver=qcow2",
        "driver=qcow2,bogus=1", "driver=qcow2,snapshot=x", "driver=qcow2,l2-cache-size=1x",
        "driver=qcow2,cache-size=-1", "driver=vpc,size=512", "size=512", "driver=raw,file.aio=foo",
        "driver=raw,file.aio=native", "driver=raw,file.locking=foo", "driver=raw,file.cache.no-flush=x",
        "driver=raw,cache.direct=on,file.cache.direct=off,"
        + "file.aio=native", "driver=qcow2,lazy-refcounts=foo", "driver=qcow2,lazy-refcounts=on,file.filename=V2"})
    void refusedAsQemuRefuses(String options) {
        String file = options.contains("qcow2") ? "q.qcow2" : options.contains("vpc") ? "v.vpc" : "io.raw";
        String typed = options.contains("file.filename=V2") ? options.replace("V2", dir.resolve("v2.qcow2").toString())
                : options + ",file.filename=" + dir.resolve(file);
        sameAsQemuImg("info", "--image-opts", typed);
        sameAsQemuImg("map", "--image-opts", typed);
        // qemu-io discards by default, which allows detect-zeroes=unmap
        if (options.startsWith("driver=raw")) {
            sameAsQemuIo(List.of("--image-opts", "-c", "read 0 512", typed));
        }
    }

    /** qemu-io ARGS and imago as qemu-io ARGS print the same and exit with the same status. */
    private void sameAsQemuIo(List<String> args) {
        Qemu.Output theirs = Qemu.run(dir, prepend(Qemu.io().toString(), args));
        Run.Result mine = Run.as("qemu-io", "", args.toArray(String[]::new));
        assertEquals(theirs.status(), mine.status(), () -> args + "\nqemu-io: " + theirs.err() + "\nimago: "
                + mine.err());
        assertEquals(theirs.out().replaceAll("\\d\\d\\.\\d\\d sec.*", "T"), mine.out().replaceAll(
                "\\d\\d\\.\\d\\d sec.*", "T"), args.toString());
        assertEquals(theirs.err(), mine.err(), args.toString());
    }

    private static Object[] prepend(String first, List<String> rest) {
        List<Object> all = new ArrayList<>();
        all.add(first);
        all.addAll(rest);
        return all.toArray();
    }

    @Test
    void readsThroughAWindow() {
        sameAsQemuIo(List.of("--image-opts", "-c", "read -P 0x22 0 512", "-c", "read -P 0 512 1k",
                "-c", "read -P 0x33 65024 4k", opts("driver=raw,offset=512")));
        sameAsQemuIo(List.of("--image-opts", "-c", "read -P 0x22 0 512", "-c", "read 4k 512",
                "-c", "read 3584 1k", opts("driver=raw,offset=512,size=4k")));
        sameAsQemuIo(List.of("--image-opts", "-c", "read -P 0 0 512", "-c", "write -P 5 8k 512",
                opts("driver=raw,offset=1M")));
    }

    /**
     * imago writes through a window and qemu-io reads the whole file, then the reverse; each write past a fixed
     * window is refused as qemu-io refuses it, and the file's bytes outside the window stay as they were.
     */
    @Test
    void writesThroughAWindowLandInIt() throws Exception {
        Path file = dir.resolve("io.raw");
        byte[] before = Files.readAllBytes(file);
        String window = opts("driver=raw,offset=4k,size=8k");
        List<String> writes = List.of("--image-opts", "-c", "write -P 0x44 0 512", "-c", "write -P 0x55 7680 512",
                "-c", "write -z 1k 1k", "-c", "write -P 0x66 7k 2k", "-c", "discard 2k 512", window);
        Run.Result ours = Run.as("qemu-io", "", writes.toArray(String[]::new));
        Qemu.ok(dir, Qemu.io(), "-f", "raw", "-c", "read -P 0x44 4k 512", "-c", "read -P 0 5k 1k",
                "-c", "read -P 0x55 11776 512", "-c", "read -P 0 12k 52k", "-c", "read -P 0x22 512 512", file);
        byte[] after = Files.readAllBytes(file);
        assertEquals(FILE_SIZE, after.length);
        assertArrayEquals(Arrays.copyOfRange(before, 0, 4096), Arrays.copyOfRange(after, 0, 4096), "before the window");
        assertArrayEquals(Arrays.copyOfRange(before, 12288, FILE_SIZE), Arrays.copyOfRange(after, 12288, FILE_SIZE),
                "after the window");
        // the reverse: qemu-io writes through the window, imago reads the file; and both tools' outputs agree
        Files.write(file, before);
        Qemu.Output theirs = Qemu.run(dir, prepend(Qemu.io().toString(), writes));
        assertEquals(theirs.out().replaceAll("\\d\\d\\.\\d\\d sec.*", "T"), ours.out().replaceAll(
                "\\d\\d\\.\\d\\d sec.*", "T"));
        assertEquals(theirs.err(), ours.err());
        assertArrayEquals(after, Files.readAllBytes(file), "the same bytes written by both tools");
        Run.imago("io", "-f", "raw", "-c", "read -P 0x44 4k 512", "-c", "read -P 0x55 11776 512", file.toString())
                .ok();
    }

    /** qemu-io follows the option string's discard mode over its own default (unmap). */
    @ParameterizedTest
    @ValueSource(strings = {"ignore", "unmap", "off"})
    void discardModeOfTheOptionString(String mode) throws Exception {
        Path theirs = Files.copy(dir.resolve("io.raw"), dir.resolve("theirs.raw"));
        Path ours = Files.copy(dir.resolve("io.raw"), dir.resolve("ours.raw"));
        List<String> script = List.of("-c", "discard 0 4k", "-c", "read -v 0 16", "-c", "write -z 64k 4k");
        List<String> qemuArgs = new ArrayList<>(List.of("--image-opts"));
        qemuArgs.addAll(script);
        qemuArgs.add("driver=raw,discard=" + mode + ",file.filename=" + theirs);
        List<String> ourArgs = new ArrayList<>(qemuArgs.subList(0, qemuArgs.size() - 1));
        ourArgs.add("driver=raw,discard=" + mode + ",file.filename=" + ours);
        Qemu.Output q = Qemu.run(dir, prepend(Qemu.io().toString(), qemuArgs));
        Run.Result r = Run.as("qemu-io", "", ourArgs.toArray(String[]::new));
        assertEquals(q.status(), r.status(), r.err());
        assertEquals(q.out().replaceAll("\\d\\d\\.\\d\\d sec.*", "T"),
                r.out().replaceAll("\\d\\d\\.\\d\\d sec.*", "T"));
        assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours));
        assertEquals(Qemu.map(theirs, "raw"), Qemu.map(ours, "raw"), "allocation");
    }

    /**
     * detect-zeroes: all-zero writes (plain, compressed, vectored, asynchronous) leave the zero clusters qemu-io's
     * leave, byte for byte; without it they are data.
     */
    @ParameterizedTest
    @ValueSource(strings = {"detect-zeroes=on", "detect-zeroes=unmap,discard=unmap", "detect-zeroes=off"})
    void detectZeroesAsQemuIo(String mode) throws Exception {
        boolean detects = !mode.endsWith("off");
        List<String> script = new ArrayList<>(List.of("--image-opts", "-c", "write -P 0 0 64k", "-c",
                "write -P 0 128k 4k", "-c", "write -P 1 192k 4k", "-c", "writev -P 0 256k 4k 4k", "-c",
                "aio_write -P 0 384k 64k", "-c", "aio_flush"));
        if (detects) { // (imago's deflate output is not zlib's: compressed data differs from QEMU's)
            script.addAll(List.of("-c", "write -c -P 0 64k 64k"));
        }
        Path theirs = dir.resolve("theirs.qcow2");
        Path ours = dir.resolve("ours.qcow2");
        for (Path p : List.of(theirs, ours)) {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", p, "1M");
            Qemu.ok(dir, Qemu.io(), "-f", "qcow2", "-c", "write -P 1 256k 192k", p); // zeroes over data too
        }
        List<String> qemuArgs = new ArrayList<>(script);
        qemuArgs.add("driver=qcow2," + mode + ",file.filename=" + theirs);
        List<String> ourArgs = new ArrayList<>(script);
        ourArgs.add("driver=qcow2," + mode + ",file.filename=" + ours);
        Qemu.Output q = Qemu.run(dir, prepend(Qemu.io().toString(), qemuArgs));
        Run.Result r = Run.as("qemu-io", "", ourArgs.toArray(String[]::new));
        assertEquals(q.status(), r.status(), r.err());
        assertEquals(q.out().replaceAll("\\d\\d\\.\\d\\d sec.*", "T"),
                r.out().replaceAll("\\d\\d\\.\\d\\d sec.*", "T"));
        assertEquals(Qemu.map(theirs, "qcow2"), Qemu.map(ours, "qcow2"), "allocation");
        assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours));
        assertEquals(!detects, Qemu.map(ours, "qcow2").getFirst().data(), "the first cluster's zeroes as data");
    }

    /** convert -S 0 writes every block; the target's detect-zeroes makes the zero ones zero clusters, as in qemu-img. */
    @ParameterizedTest
    @ValueSource(strings = {"detect-zeroes=on,", ""})
    void detectZeroesOfConvertsTarget(String mode) throws Exception {
        Path theirs = dir.resolve("theirs.qcow2");
        Path ours = dir.resolve("ours.qcow2");
        for (Path p : List.of(theirs, ours)) {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", p, "1M");
        }
        String source = dir.resolve("io.raw").toString();
        Qemu.ok(dir, Qemu.img(), "convert", "-n", "-S", "0", source, "--target-image-opts", "driver=qcow2," + mode
                + "file.filename=" + theirs);
        Run.imago("convert", "-n", "-S", "0", source, "--target-image-opts", "driver=qcow2," + mode
                + "file.filename=" + ours).ok();
        assertEquals(Qemu.map(theirs, "qcow2"), Qemu.map(ours, "qcow2"), "allocation");
        assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours));
        assertEquals(!mode.isEmpty(), Qemu.map(ours, "qcow2").stream().anyMatch(e -> !e.data()), "zero clusters");
    }

    /**
     * file.locking=off: a second writer opens an image that another holds, as qemu-io does; without it, both
     * tools refuse it. The holder keeps other writers out of its raw file, as qemu-img convert does of its source
     * (a raw file's default lock lets them in, as qemu-io's does).
     */
    @Test
    void lockingOffLetsASecondWriterOpen() throws Exception {
        Path file = dir.resolve("io.raw");
        try (imago.api.Image holder = imago.probe.Imago.opener().path(file).format("raw").writable(true)
                .shareRawWrites(false).open()) {
            for (String locking : List.of("", ",file.locking=off", ",file.locking=on")) {
                List<String> args = List.of("--image-opts", "-c", "write -P 0x66 0 512",
                        "driver=raw" + locking + ",file.filename=" + file);
                Qemu.Output q = Qemu.run(dir, prepend(Qemu.io().toString(), args));
                Run.Result r = Run.as("qemu-io", "", args.toArray(String[]::new));
                assertEquals(q.status(), r.status(), () -> locking + "\nqemu-io: " + q.err() + "\nimago: " + r.err());
                assertEquals(locking.endsWith("off") ? 0 : 1, r.status(), locking);
                assertEquals(q.out().replaceAll("\\d\\d\\.\\d\\d sec.*", "T"),
                        r.out().replaceAll("\\d\\d\\.\\d\\d sec.*", "T"));
            }
            assertFalse(holder.readOnly());
        }
        Qemu.ok(dir, Qemu.io(), "-f", "raw", "-c", "read -P 0x66 0 512", file);
    }

    /** O_DIRECT, as Linux defines it on this machine's architecture. */
    private static final int O_DIRECT = "aarch64".equals(System.getProperty("os.arch")) ? 0200000 : 040000;

    /**
     * cache.direct (and the file's own file.cache.direct): the file is open with O_DIRECT exactly when qemu-io has
     * it so, the option winning over {@code -t} as in QEMU.
     */
    @ParameterizedTest
    @ValueSource(strings = {"--image-opts driver=raw,cache.direct=on,file.filename=F|true",
        "-t none --image-opts driver=raw,cache.direct=off,file.filename=F|false",
        "--image-opts driver=raw,file.cache.direct=on,file.filename=F|true",
        "--image-opts driver=raw,cache.direct=on,cache.no-flush=on,file.filename=F|true",
        "-t none --image-opts driver=raw,file.filename=F|true", "--image-opts driver=raw,file.filename=F|false"})
    void cacheDirectOpensWithODirectAsQemuIo(String testCase) throws Exception {
        Path file = dir.resolve("io.raw");
        String[] args = testCase.split("\\|")[0].replace("F", file.toString()).split(" ");
        boolean expected = Boolean.parseBoolean(testCase.split("\\|")[1]);
        for (boolean ours : new boolean[] {false, true}) {
            try (HeldOpen held = ours ? HeldOpen.imago(args) : HeldOpen.qemu(dir, args)) {
                held.run("read -P 0x11 0 512", "read 512/512 bytes");
                List<Integer> flags = held.openFlags(file);
                assertFalse(flags.isEmpty(), () -> "no descriptor of " + file + "\n" + held.output());
                assertEquals(expected, flags.stream().anyMatch(f -> (f & O_DIRECT) != 0),
                        () -> (ours ? "imago " : "qemu-io ") + testCase + ": " + flags);
                held.run("write -P 0x44 4k 512", "wrote 512/512 bytes");
            }
        }
        Qemu.ok(dir, Qemu.io(), "-f", "raw", "-c", "read -P 0x44 4k 512", file);
    }

    /** The dirty bit of a qcow2 image (incompatible feature bit 0, the header's byte 79). */
    private static boolean dirty(Path qcow2) throws Exception {
        return (Files.readAllBytes(qcow2)[79] & 1) != 0;
    }

    /**
     * qcow2's lazy-refcounts open option wins over the image's bit while it is open: a write marks the image dirty
     * exactly when qemu-io's marks it (qemu-io aborts after its flush; imago's image is looked at while open), and a
     * clean close clears the mark; compat=0.10 images refuse it (refusedAsQemuRefuses).
     */
    @ParameterizedTest
    @ValueSource(strings = {"on", "off"})
    void lazyRefcountsAsQemuIo(String mode) throws Exception {
        Path theirs = dir.resolve("theirs.qcow2");
        Path ours = dir.resolve("ours.qcow2");
        for (Path p : List.of(theirs, ours)) { // the option says the opposite of the image's bit
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts="
                    + (mode.equals("on") ? "off" : "on"), p, "1M");
        }
        Qemu.Output q = Qemu.run(dir, Qemu.io(), "--image-opts", "-c", "write -P 7 0 64k", "-c", "flush", "-c",
                "abort", "driver=qcow2,lazy-refcounts=" + mode + ",file.filename=" + theirs);
        assertEquals(134, q.status(), q.err());
        try (HeldOpen held = HeldOpen.imago("--image-opts", "driver=qcow2,lazy-refcounts=" + mode + ",file.filename="
                + ours)) {
            held.run("write -P 7 0 64k", "wrote 65536/65536 bytes");
            held.run("flush", "");
            held.run("read -P 7 0 512", "read 512/512 bytes"); // after the flush
            assertEquals(dirty(theirs), dirty(ours));
            assertEquals(mode.equals("on"), dirty(ours));
        }
        assertFalse(dirty(ours), "marked clean on close");
        assertEquals(0, Qemu.check(ours, "qcow2").status());
    }

    @Test
    void resizeOfAWindow() throws Exception {
        sameAsQemuImg("resize", "--image-opts", opts("driver=raw,size=4096"), "2M");
        sameAsQemuImg("resize", "--image-opts", opts("driver=raw,offset=512,size=4096"), "8k");
        sameAsQemuImg("resize", "--image-opts", opts("driver=raw,offset=512"), "2M");
        assertEquals(2 * FILE_SIZE + 512, Files.size(dir.resolve("io.raw")));
        Qemu.ok(dir, Qemu.img(), "resize", "-q", "-f", "raw", "--shrink", "io.raw", "1M");
        Run.imago("resize", "--shrink", "--image-opts", opts("driver=raw,offset=512"), "4k").ok();
        assertEquals(4608, Files.size(dir.resolve("io.raw")));
    }
}
