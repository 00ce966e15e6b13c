package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.Image;
import imago.api.ZeroFlag;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The same writes on the same fresh image put every cluster where qemu-io puts it: after each case has run
 * through qemu-io on one copy and through imago's library API on another (session by session, each one an open
 * and a close), {@code qemu-img map --output=json} prints the same host offsets for both, the files have the
 * same size, and both are clean and identical for qemu-img. The sample covers what moves clusters: the
 * allocator's first fit, L2 tables between data runs, refcount blocks and refcount table growth (placed as QEMU
 * places them: 512-byte clusters need a new block every 128 KiB and a larger table after 8 MiB), zeroed
 * copy-on-write parts (sparse, as QEMU leaves them), partial subclusters, lazy refcounts (the file is grown
 * ahead while open, and cut on close), copy-on-write from a backing file, compressed clusters (packed as
 * QEMU packs them), and zero writes and discards (which take L2 tables as QEMU's do).
 */
class Qcow2LayoutDifferentialTest {

    /**
     * One case.
     *
     * @param name what it covers
     * @param options qemu-img create options
     * @param size the virtual size (qemu-img's syntax)
     * @param backing whether the image gets a qcow2 backing file full of data
     * @param sessions qemu-io commands, one list per open and close: {@code write [-c] -P pattern offset length}
     *        (compressed: whole clusters, each written compressed), {@code write -z [-u] offset length},
     *        {@code discard offset length}, {@code flush}
     */
    record Case(String name, String options, String size, boolean backing, List<List<String>> sessions) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case("one cluster of a 128k image", "", "128k", false, List.of(List.of("write -P 1 0 64k"))),
                new Case("writes in one session", "", "64M", false, List.of(List.of("write -P 1 0 64k",
                        "write -P 2 1M 64k", "write -P 3 128k 8k", "write -P 4 3M 4M", "write -z 20M 1M",
                        "write -P 5 40M 4k"))),
                new Case("the same writes in separate sessions", "", "64M", false, List.of(
                        List.of("write -P 1 0 64k"), List.of("write -P 2 1M 64k"), List.of("write -P 3 128k 8k"),
                        List.of("write -P 4 3M 4M"), List.of("write -z 20M 1M"), List.of("write -P 5 40M 4k"))),
                new Case("512-byte clusters: refcount blocks and a larger refcount table", "cluster_size=512",
                        "16M", false, List.of(List.of("write -P 1 0 100k", "write -P 2 100k 23k",
                                "write -P 3 123k 512", "write -P 4 124k 1k"), List.of("write -P 5 200k 10M"))),
                new Case("64-bit refcounts: blocks counted by the next block", "cluster_size=512,refcount_bits=64",
                        "16M", false, List.of(List.of("write -P 1 0 10k", "write -P 2 1M 10k", "write -P 3 2560 512"),
                                List.of("write -P 4 4M 3M"))),
                new Case("2 MiB clusters: zeroed copy-on-write parts", "cluster_size=2M", "64M", false, List.of(
                        List.of("write -P 1 1k 4k", "write -P 2 3M 4k"), List.of("write -P 3 9M 64k"))),
                new Case("extended L2: partial subclusters", "extended_l2=on", "4M", false, List.of(
                        List.of("write -P 1 0 4k", "write -P 2 1M 6k", "write -P 3 130k 8k"),
                        List.of("write -P 4 3M 1k"))),
                new Case("extended L2, 2 MiB clusters", "extended_l2=on,cluster_size=2M", "16M", false, List.of(
                        List.of("write -P 1 1M 6k", "write -P 2 5M 8k"), List.of("write -P 3 9M 1k"))),
                new Case("lazy refcounts, flushed", "lazy_refcounts=on", "64M", false, List.of(
                        List.of("write -P 1 0 20M", "flush", "write -P 2 30M 1M", "flush", "write -P 3 40M 4k"),
                        List.of("write -P 4 50M 64k"))),
                new Case("lazy refcounts, 4 KiB clusters", "lazy_refcounts=on,cluster_size=4k", "64M", false,
                        List.of(List.of("write -P 1 0 9M", "flush", "write -P 2 12M 5k"))),
                new Case("copy-on-write from a backing file", "", "8M", true, List.of(
                        List.of("write -P 1 1k 4k", "write -P 2 3M 100k"), List.of("write -z 5M 64k",
                                "write -P 3 6M 512"))),
                new Case("512-byte clusters over a backing file", "cluster_size=512", "8M", true, List.of(
                        List.of("write -P 1 1k 4k", "write -P 2 3M 300k"), List.of("write -P 3 6M 512"))),
                // zstd, whose output is the same as QEMU's (deflate's is not: java.util.zip has no 4 KiB window)
                new Case("compressed clusters packed between tables and data", "compression_type=zstd",
                        "8M", false, List.of(List.of("write -c -P 1 0 128k", "write -P 2 1M 4k",
                                "write -c -P 3 2M 64k"), List.of("write -c -P 4 4M 192k", "flush",
                                "write -c -P 5 6M 64k"))),
                // QEMU frees what a discard lets go of at once, imago on the next flush (the dropped reference must be
                // on the disk first): here no allocation follows a discard in the same session
                new Case("zero writes and discards take L2 tables as QEMU's do", "", "1G", false, List.of(
                        List.of("write -P 1 0 1M", "write -z 20M 1M", "write -z -u 256k 128k", "discard 512k 64k"),
                        List.of("write -z 600M 1M", "discard 700M 1M", "write -z 64k 64k"),
                        List.of("write -P 2 900M 64k"))),
                new Case("version 2: a zero write without a backing file is a discard", "compat=0.10", "1G", false,
                        List.of(List.of("write -P 1 0 1M", "write -z 600M 1M", "write -z 128k 64k"),
                                List.of("write -P 2 5M 64k"))),
                new Case("extended L2: zero writes and discards", "extended_l2=on", "1G", false, List.of(
                        List.of("write -P 1 0 1M", "write -z 20M 1M", "discard 600M 1M", "discard 256k 64k"),
                        List.of("write -P 2 5M 4k"))),
                new Case("compressed 512-byte clusters across L2 tables and refcount blocks",
                        "compression_type=zstd,cluster_size=512", "4M", false, List.of(List.of(
                                "write -c -P 1 0 40k", "write -P 2 64k 1k", "write -c -P 3 100k 200k"))));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void layoutMatchesQemu(Case c, @TempDir Path dir) throws IOException {
        Qemu.require();
        List<Object> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
        if (c.backing()) {
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", c.size());
            Qemu.ok(dir, "qemu-io", "-c", "write -P 0x5a 0 " + c.size(), "base.qcow2");
            create.addAll(List.of("-b", "base.qcow2", "-F", "qcow2"));
        }
        if (!c.options().isEmpty()) {
            create.addAll(List.of("-o", c.options()));
        }
        create.addAll(List.of("theirs.qcow2", c.size()));
        Qemu.ok(dir, create.toArray());
        Path theirs = dir.resolve("theirs.qcow2");
        Path ours = dir.resolve("ours.qcow2");
        Files.copy(theirs, ours, StandardCopyOption.COPY_ATTRIBUTES);
        for (List<String> session : c.sessions()) {
            List<Object> io = new ArrayList<>(List.of("qemu-io", "-f", "qcow2"));
            for (String command : session) {
                io.add("-c");
                io.add(command);
            }
            io.add("theirs.qcow2");
            Qemu.ok(dir, io.toArray());
            try (Image image = Imago.opener().path(ours).writable(true).open()) {
                for (String command : session) {
                    run(image, command);
                }
            }
        }
        assertEquals(Qemu.ok(dir, "qemu-img", "map", "--output=json", "theirs.qcow2"),
                Qemu.ok(dir, "qemu-img", "map", "--output=json", "ours.qcow2"), "host offsets");
        assertEquals(Files.size(theirs), Files.size(ours), "file size");
        Qemu.ok(dir, "qemu-img", "check", "-q", "ours.qcow2");
        Qemu.ok(dir, "qemu-img", "compare", "-q", "theirs.qcow2", "ours.qcow2");
    }

    /** Runs one qemu-io command of the cases through imago's API. */
    private static void run(Image image, String command) throws IOException {
        List<String> w = List.of(command.split(" "));
        switch (w.get(0)) {
            case "flush" -> image.flush();
            case "discard" -> image.discard(bytes(w.get(1)), bytes(w.get(2)));
            case "write" -> {
                long offset = bytes(w.get(w.size() - 2));
                long length = bytes(w.get(w.size() - 1));
                if (w.contains("-z")) {
                    image.writeZeroes(offset, length, w.contains("-u") ? Set.of(ZeroFlag.MAY_UNMAP) : Set.of());
                    return;
                }
                byte fill = (byte) Integer.decode(w.get(w.indexOf("-P") + 1)).intValue();
                // compressed: cluster by cluster, as qemu-io writes them
                int unit = w.contains("-c") ? image.info().clusterSize().orElseThrow() : (int) length;
                for (long done = 0; done < length; done += unit) {
                    byte[] data = new byte[unit];
                    Arrays.fill(data, fill);
                    if (w.contains("-c")) {
                        image.writeCompressed(ByteBuffer.wrap(data), offset + done);
                    } else {
                        image.write(ByteBuffer.wrap(data), offset + done);
                    }
                }
            }
            default -> throw new IllegalArgumentException("not a command of these cases: " + command);
        }
    }

    /** A size with an optional k or M suffix, as qemu-io reads it. */
    private static long bytes(String s) {
        return switch (s.charAt(s.length() - 1)) {
            case 'k' -> Long.parseLong(s.substring(0, s.length() - 1)) << 10;
            case 'M' -> Long.parseLong(s.substring(0, s.length() - 1)) << 20;
            default -> Long.parseLong(s);
        };
    }
}
