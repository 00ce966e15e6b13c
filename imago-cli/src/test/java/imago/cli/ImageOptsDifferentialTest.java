package imago.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

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
        "driver=qcow2,cache-size=-1", "driver=vpc,size=512", "size=512"})
    void refusedAsQemuRefuses(String options) {
        String file = options.contains("qcow2") ? "q.qcow2" : options.contains("vpc") ? "v.vpc" : "io.raw";
        String typed = options + ",file.filename=" + dir.resolve(file);
        sameAsQemuImg("info", "--image-opts", typed);
        sameAsQemuImg("map", "--image-opts", typed);
        // qemu-io discards by default, which allows detect-zeroes=unmap (imago refuses detect-zeroes, in its words)
        if (options.startsWith("driver=raw") && !options.contains("detect-zeroes")) {
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
