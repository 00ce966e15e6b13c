package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * qemu-io's commands, every flag, through qemu-io and imago invoked as {@code qemu-io} (see
 * {@link QemuIoDifferential}): on qcow2, raw, vmdk and vpc, with {@code -c} and typed on standard input (qemu-io's
 * interactive mode, with its prompt), with a file on the command line and with none ({@code open}).
 */
class QemuIoCommandsDifferentialTest {
    private static final String DATA = "write -P 1 0 64k|read -P 1 0 64k|read -C 0 512|read -q -C 0 512|"
            + "write -C 64k 4k|read -v 0 32|read -P 1 -s 512 -l 1k 0 4k|read -P 2 -s 512 0 4k|read -p -P 1 0 1k|"
            + "write -f -P 3 1M 512|read -P 3 1M 512|write -z 2M 64k|write -z -u 3M 64k|read -P 0 2M 64k|"
            + "read 0 8M|write 4M 512|read -s 1 0 1|write -P 0x1ff 0 1|write -s nofile 0 1|write -u 0 1|write -n 0 1|"
            + "write -z -P 1 0 1|write -b -z 0 512|write -c -f 0 64k|write -z -u -c 0 1|write -z 0 3G|read 0 3G|"
            + "write 0|read x 1|read 0 1x";
    private static final String VECTORS = "writev -P 3 0 512 1k 2560|readv -P 3 0 512 1k 2560|readv -v 0 16 16|"
            + "writev -f -q 1M 4k 60k|readv -C 1M 64k|readv 0 x|writev 8M 512|readv -P 4 0 512|readv 0|readv 0 0|"
            + "writev 0 3G|writev -z 0 512|readv -s 0 0 512|readv -P 0x1ff 0 1|writev 1x 1";
    private static final String ASYNC = "aio_write -P 4 128k 4k|aio_flush|aio_read -P 4 128k 4k|aio_flush|"
            + "aio_write -z 128k 512|aio_flush|aio_read -P 0 -v 128k 16|aio_flush|aio_write -f -C 192k 4k|aio_flush|"
            + "aio_read -P 5 -q 128k 512|aio_flush|aio_read 8M 512|aio_flush|aio_write -z -u 192k 4k|aio_flush|"
            + "aio_read -i 0 1|aio_write -i 0 1|aio_write -u 0 512|aio_write -z 0 512 1k|aio_read 0|aio_read -l 1 0 1|"
            + "aio_write -z 0 x|aio_read x 1";
    private static final String ALLOCATION = "write -P 1 0 1M|discard -C 0 64k|discard -q 128k 64k|write -z 1M 64k|"
            + "write -z -u 2M 64k|alloc 0 2M|alloc 1M|alloc 0 x|map|map x|length|flush|truncate -m bogus 8M|"
            + "discard 0|discard 8M 512|discard -x 0 1";
    private static final String SESSION = "close|info|length|open -r IMG|write 0 512|read -P 0 0 512|close|"
            + "open IMG|write -P 5 0 512|reopen -r|write 0 512|reopen -w|write -q -P 6 512 512|reopen -r -w|"
            + "reopen -c bogus|reopen -o driver=raw|reopen -o bogus=1|reopen x|reopen -x|reopen -c writethrough|"
            + "open IMG|open -t bogus IMG|open -x|close|close";
    private static final String NO_FILE = "length|read 0 1|open|open a b|open -x|open -d bogus IMG|open nofile.img|"
            + "open -o FILE_OPTIONS|length|read -P 0 0 512|write -P 7 64k 64k|close|open -r IMG|write 0 512|"
            + "read -P 7 64k 64k|close";
    // the commands with extended help are compared by helpNamesTheSameOptions (their prose is imago's own)
    private static final String PROGRAM = "help|help map|help length|help nope|help a b|nope|"
            + "sleep 5|sleep x|sleep -1|sigraise|sigraise x|sigraise 99|sigraise 1k|sigraise 0|break a b|remove_break a|resume a|abort x|length|q x|length";
    private static final String COMPRESSED = "write -c 0 64k|write -c 0 64k|write -c 64k 512|write -c 1 512|"
            + "write -c -P 9 1M 128k|read -P 9 1M 128k|write -c 4M-64k 64k|write -c -q 2M 64k";
    // the VM state area: only qcow2 has one (VmStateDifferentialTest has more); the other formats refuse
    private static final String VMSTATE = "read -b 0 512|write -b 0 512|write -b -P 1 0 4k|read -b -v 0 16|"
            + "write -b 1 512|read -b -P 1 0 512|write -b -z 0 512|write -b -f 0 512|read -b 0 8M|read -b -q 0 1k";
    private static final String RESIZE = "truncate 8M|length|write -P 3 7M 4k|truncate 6M|length|read 7M 512";

    @TempDir
    Path dir;

    static Stream<Arguments> scripts() {
        List<Arguments> all = new ArrayList<>();
        for (String format : List.of("qcow2", "raw", "vmdk", "vpc")) {
            for (String script : List.of(DATA, VECTORS, ASYNC, ALLOCATION, SESSION)) {
                all.add(Arguments.of(format, script, true, false));
            }
        }
        all.add(Arguments.of("qcow2", NO_FILE, false, false));
        all.add(Arguments.of("vpc", NO_FILE, false, true));
        all.add(Arguments.of("qcow2", PROGRAM, true, false));
        all.add(Arguments.of("qcow2", SESSION, true, true));
        all.add(Arguments.of("raw", DATA, true, true));
        // vmdk (monolithicSparse): QEMU's vmdk stores "compressed" writes as plain data; streamOptimized and
        // monolithicFlat: vmdkCompressedWritesAsQemuIo
        for (String format : List.of("qcow2", "raw", "vpc", "vmdk")) {
            all.add(Arguments.of(format, COMPRESSED, true, false));
        }
        for (String format : List.of("qcow2", "raw", "vmdk")) {
            all.add(Arguments.of(format, RESIZE, true, false));
        }
        for (String format : List.of("qcow2", "raw", "vmdk", "vpc")) {
            all.add(Arguments.of(format, VMSTATE, true, false));
        }
        return all.stream();
    }

    @ParameterizedTest(name = "{0} {2}/{3}: {1}")
    @MethodSource("scripts")
    void actsAsQemuIo(String format, String script, boolean fileOnCommandLine, boolean interactive) throws Exception {
        Path theirs = image(format, "qemu");
        Path ours = image(format, "imago");
        List<String> options = fileOnCommandLine ? List.of("-f", format) : List.of();
        List<String> commands = List.of(script.replace("FILE_OPTIONS", "driver=" + format + ",file.filename=IMG")
                .split("\\|"));
        // README, vpc: "zero writes do not allocate blocks where QEMU writes buffers of zeroes (same contents,
        // smaller file)": the contents are compared, the allocation is not
        boolean sameAllocation = !(format.equals("vpc") && script.contains(" -z"));
        QemuIoDifferential.agree(dir, new QemuIoDifferential.Image(theirs, ours, format, sameAllocation),
                fileOnCommandLine, options, commands, interactive);
    }

    /**
     * {@code write -c} on the vmdk subformats: streamOptimized stores whole clusters compressed (in any order; a
     * cluster already written fails with EIO and QEMU's message), the others store the bytes as an ordinary write.
     */
    @ParameterizedTest
    @ValueSource(strings = {"streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse"})
    void vmdkCompressedWritesAsQemuIo(String subformat) throws Exception {
        Path theirs = vmdk(subformat, "qemu");
        Path ours = vmdk(subformat, "imago");
        List<String> commands = List.of(COMPRESSED.split("\\|"));
        // streamOptimized: grains in any order, each once, as QEMU
        List<String> more = List.of("write -c -P 4 3M 64k", "write -c -P 5 2M 64k", "read -P 5 2M 64k",
                "write -c -P 7 3M+128k 4k", "write -c -P 8 4194304-64k 64k", "write -P 3 3M 64k", "write -P 3 3M 4k",
                "write -f -P 6 3200k 64k", "read -P 9 1M 128k", "read -P 6 3200k 64k", "read -P 8 4032k 64k");
        QemuIoDifferential.agree(dir, new QemuIoDifferential.Image(theirs, ours, "vmdk"), true, List.of("-f", "vmdk"),
                java.util.stream.Stream.concat(commands.stream(), more.stream()).toList(), false);
    }

    private Path vmdk(String subformat, String side) throws Exception {
        Path d = Files.createDirectories(dir.resolve(side));
        Path image = d.resolve("img.vmdk");
        Qemu.ok(d, Qemu.img(), "create", "-q", "-f", "vmdk", "-o", "subformat=" + subformat, image, "4M");
        return image;
    }

    /**
     * When and in which order the completions of asynchronous requests print: several {@code aio_write}s, then
     * {@code aio_flush} (or {@code sleep}, which runs qemu-io's event loop too). On vmdk qemu-io prints them in the
     * order of the requests, and imago's output must be the same. On raw qemu-io's order depends on its threads (under
     * load it printed seven orders in 30 runs, and {@code sleep 100} sometimes ended before a completion): what is fixed
     * is which completions print before each {@code aio_flush} returns, so those windows are compared as sets, and
     * imago's own order is checked apart: the latest first, the order qemu-io prints most often. On raw the last two
     * writes do not overlap: which of two overlapping writes lands last is up to qemu-io's threads too (under load
     * its own read of the later pattern failed).
     */
    @ParameterizedTest
    @ValueSource(strings = {"raw", "vmdk"})
    void aioCompletionsPrintInQemuIosOrder(String format) throws Exception {
        String last = format.equals("vmdk") ? "3M" : "3149824"; // 3M + 4k
        List<String> commands = List.of("aio_write -P 1 0 64k", "aio_write -P 2 64k 64k", "aio_write -P 3 128k 4k",
                "aio_write -P 4 1M 512", "aio_flush", "aio_write -P 5 0 4k", "aio_write -P 6 8k 4k", "sleep 100",
                "length", "aio_write -P 7 2M 4k", "aio_write -q -P 8 3M 4k", "aio_write -P 9 " + last + " 512",
                "aio_flush", "read -P 9 " + last + " 512");
        Path theirs = imageIn(dir, format, "qemu");
        Path ours = imageIn(dir, format, "imago");
        QemuIoDifferential.Outputs out = QemuIoDifferential.outputs(dir, new QemuIoDifferential.Image(theirs, ours,
                format), true, List.of("-f", format), commands, false);
        if (format.equals("vmdk")) {
            assertEquals(out.theirs(), out.ours(), commands.toString());
            return;
        }
        // four completions before the first aio_flush; four and length's line before the second; then the read
        assertEquals(windows(out.theirs(), 4, 5), windows(out.ours(), 4, 5), out.theirs() + "\n---\n" + out.ours());
        assertEquals(List.of("1048576", "131072", "65536", "0"), records(out.ours()).subList(0, 4).stream()
                .map(r -> r.replaceAll("(?s).* at offset (\\d+).*", "$1")).toList(), out.ours());
    }

    /** Output records: a {@code wrote}/{@code read} line with the statistics line after it, or one other line. */
    private static List<String> records(String output) {
        List<String> lines = output.lines().toList();
        List<String> records = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            boolean io = (line.startsWith("wrote ") || line.startsWith("read ")) && i + 1 < lines.size();
            records.add(io ? line + "\n" + lines.get(++i) : line);
        }
        return records;
    }

    /** The records in windows of the given sizes (the rest in a last one), each sorted: order within is not compared. */
    private static List<List<String>> windows(String output, int... sizes) {
        List<String> records = records(output);
        List<List<String>> windows = new ArrayList<>();
        int at = 0;
        for (int size : sizes) {
            int end = Math.min(records.size(), at + size);
            windows.add(records.subList(Math.min(at, end), end).stream().sorted().toList());
            at = end;
        }
        windows.add(records.subList(at, records.size()).stream().sorted().toList());
        return windows;
    }

    /**
     * {@code help COMMAND} for the commands qemu-io explains at length: the synopsis line is qemu-io's, byte for byte,
     * and the options explained are the ones qemu-io explains, in its order; the explanations are in imago's words
     * (qemu-io's are GPL prose, README).
     */
    @ParameterizedTest
    @ValueSource(strings = {"read", "write", "readv", "writev", "aio_read", "aio_write", "discard", "open", "reopen",
        "sigraise"})
    void helpNamesTheSameOptions(String command) throws Exception {
        Qemu.Output theirs = Qemu.run(dir, Qemu.io(), "-c", "help " + command);
        Run.Result mine = Run.as("qemu-io", "", "-c", "help " + command);
        assertEquals(theirs.status(), mine.status(), mine.err());
        assertEquals(theirs.out().lines().findFirst(), mine.out().lines().findFirst(), "the synopsis");
        assertEquals(options(theirs.out()), options(mine.out()), "the options explained");
        assertTrue(options(mine.out()).size() > 0 || command.equals("sigraise"), mine.out());
    }

    /**
     * {@code -h}: qemu-io's synopsis line, then its options with their synopses in its order (imago's own after
     * them), then where the commands are listed; the explanations are imago's words (README). Nothing on standard
     * error, exit status 0, as {@code -h} wherever it comes.
     */
    @ParameterizedTest
    @ValueSource(strings = {"-h", "--help", "-f raw -h", "-h -V", "-c length --help"})
    void usageHasQemuIosShape(String options) throws Exception {
        String[] args = options.split(" ");
        Qemu.Output theirs = Qemu.run(dir, Stream.concat(Stream.of(Qemu.io()), Stream.of(args)).toArray());
        Run.Result mine = Run.as("qemu-io", "", args);
        assertEquals(List.of(0, 0, "", ""), List.of(theirs.status(), mine.status(), theirs.err(), mine.err()));
        assertEquals(theirs.out().lines().findFirst(), mine.out().lines().findFirst(), "the synopsis");
        List<String> qemuOptions = usageOptions(theirs.out());
        List<String> ours = usageOptions(mine.out());
        assertEquals(List.of("--object", "--image-opts", "-c, --cmd", "-f, --format", "-r, --read-only",
                "-s, --snapshot", "-n, --nocache", "-C, --copy-on-read", "-m, --misalign", "-k, --native-aio",
                "-i, --aio", "-t, --cache", "-d, --discard", "-T, --trace", "-U, --force-share", "-h, --help",
                "-V, --version"), qemuOptions, "qemu-io 7.2's options (the test's premise)");
        assertEquals(qemuOptions, ours.subList(0, qemuOptions.size()), mine.out());
        assertEquals(List.of("--gate", "--debug"), ours.subList(qemuOptions.size(), ours.size()));
        assertTrue(mine.out().contains("'qemu-io -c help'"), mine.out());
        for (String option : List.of("--object OBJECTDEF", "-c, --cmd STRING", "-f, --format FMT", "-i, --aio=MODE",
                "-T, --trace [[enable=]<pattern>][,events=<file>][,file=<file>]")) {
            // the same synopses, as qemu-io prints them
            assertTrue(theirs.out().contains("  " + option) && mine.out().contains("  " + option), option);
        }
        // every option it names, the command takes
        for (String option : List.of("--object", "--image-opts", "--cmd", "--format", "--read-only", "--snapshot",
                "--nocache", "--copy-on-read", "--misalign", "--native-aio", "--aio", "--cache", "--discard",
                "--trace", "--force-share")) {
            assertTrue(mine.out().contains(option), option);
        }
    }

    /**
     * {@code -V}: qemu-io's two lines, {@code qemu-io version VERSION (...)} first, with imago's version and name; exit
     * status 0. The long option names are qemu-io's too ({@code --format}).
     */
    @ParameterizedTest
    @ValueSource(strings = {"-V", "--version", "-V -h", "--format raw -V"})
    void versionHasQemuIosShape(String options) throws Exception {
        String[] args = options.split(" ");
        Qemu.Output theirs = Qemu.run(dir, Stream.concat(Stream.of(Qemu.io()), Stream.of(args)).toArray());
        Run.Result mine = Run.as("qemu-io", "", args);
        assertEquals(List.of(0, 0, "", ""), List.of(theirs.status(), mine.status(), theirs.err(), mine.err()));
        assertTrue(theirs.out().matches("qemu-io version [0-9.]+ \\(.*\\)\n[^\n]+\n"), theirs.out());
        assertTrue(mine.out().matches("qemu-io version \\S+ \\(imago, .*\\)\nJava [^\n]+\n"), mine.out());
        String fromImago = Run.imago("--version").ok().out().lines().findFirst().orElseThrow();
        assertTrue(mine.out().startsWith("qemu-io version " + fromImago.substring("imago version ".length()) + " "),
                mine.out());
    }

    /** The options of qemu-io's usage: each line's names ({@code -c, --cmd}, {@code --object}), in order. */
    private static List<String> usageOptions(String usage) {
        return usage.lines().map(l -> java.util.regex.Pattern.compile("^  ((?:-\\w, )?--[a-z-]+)").matcher(l))
                .filter(java.util.regex.Matcher::find).map(m -> m.group(1)).toList();
    }

    /** The option letters of an extended help, in order ({@code -X, -- ...} lines). */
    private static List<String> options(String help) {
        return help.lines().map(String::strip).filter(l -> l.matches("-[A-Za-z], -- .*"))
                .map(l -> l.substring(0, 2)).toList();
    }

    /** An empty image of {@code format} with some data, the same for both tools. */
    private Path image(String format, String side) throws Exception {
        return imageIn(dir, format, side);
    }

    private static Path imageIn(Path dir, String format, String side) throws Exception {
        Path d = Files.createDirectories(dir.resolve(side));
        Path image = d.resolve("img." + format);
        Qemu.ok(d, Qemu.img(), "create", "-q", "-f", format, image, "4M");
        Qemu.ok(d, Qemu.io(), "-f", format, "-c", "write -P 0x5a 256k 64k", image);
        return image;
    }
}
