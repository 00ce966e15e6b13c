package imago.vmdk.internal;

import static imago.vmdk.internal.VmdkQemu.img;
import static imago.vmdk.internal.VmdkQemu.io;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What imago creates and writes is, file for file and byte for byte, what qemu-img and qemu-io make of the same
 * steps (only the random CIDs differ, and QEMU pads a descriptor file it rewrites with NULs); {@code qemu-img check}
 * finds it clean and {@code qemu-img compare} equal. Options are sampled, not enumerated.
 */
class VmdkWriteDifferentialTest {
    /** Larger files (flat extents) are compared by size and through qemu-img compare. */
    private static final long COMPARED = 64L << 20;

    @TempDir
    Path dir;

    static Stream<Arguments> cases() {
        String[] mixed = {"write -P 0x11 0 100k", "write -P 0x22 300k 1k", "write -P 0x33 1M 64k",
            "write -P 0x44 512 512", "write -z 2M 64k", "write -P 0x55 2M 4k"};
        String[] zeroes = {"write -P 0x11 0 300k", "write -z 0 64k", "write -z 128k 128k", "write -z 1M 64k",
            "write -z 2M 4k", "write -P 0x22 3M 1k"};
        String[] split = {"write -P 0x11 0 100k", "write -P 0x22 2047M 2M", "write -z 8M 1M",
            "write -P 0x33 2048M 4k"};
        return Stream.of(
                Arguments.of("subformat=monolithicSparse", (5L << 20) + 1536, append(mixed, "write -P 0x77 5M 1536")),
                Arguments.of("zeroed_grain=on,adapter_type=lsilogic", 4L << 20, zeroes),
                Arguments.of("subformat=twoGbMaxExtentSparse,hwversion=7,toolsversion=10", 2049L << 20, split),
                Arguments.of("subformat=monolithicFlat,compat6=on", 3L << 20, mixed),
                Arguments.of("subformat=twoGbMaxExtentFlat,adapter_type=buslogic", 2049L << 20, split),
                Arguments.of("subformat=streamOptimized,adapter_type=legacyESX", 10L << 20, new String[0]));
    }

    private static String[] append(String[] a, String more) {
        String[] out = Arrays.copyOf(a, a.length + 1);
        out[a.length] = more;
        return out;
    }

    static CreateOptions options(String options, long size) {
        CreateOptions.Builder b = CreateOptions.builder().size(size);
        for (String kv : options.split(",")) {
            int eq = kv.indexOf('=');
            b.option(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return b.build();
    }

    @ParameterizedTest
    @MethodSource("cases")
    void createAndWriteAsQemu(String options, long size, String[] commands) throws IOException {
        Path q = Files.createDirectory(dir.resolve("q"));
        Path i = Files.createDirectory(dir.resolve("i"));
        img(q, "create", "-q", "-f", "vmdk", "-o", options, "x.vmdk", Long.toString(size));
        Imago.create(i.resolve("x.vmdk"), "vmdk", options(options, size));
        VmdkFiles.assertSameFiles(q, i, COMPARED);
        if (commands.length > 0) {
            io(q, q.resolve("x.vmdk"), commands);
            try (Image image = Imago.opener().path(i.resolve("x.vmdk")).writable(true).open()) {
                VmdkFiles.run(image, commands);
            }
            VmdkFiles.assertSameFiles(q, i, COMPARED);
        }
        assertClean(i.resolve("x.vmdk"));
        img(dir, "compare", q.resolve("x.vmdk"), i.resolve("x.vmdk"));
        assertEquals(VmdkQemu.qemuMap(dir, q.resolve("x.vmdk")), VmdkQemu.qemuMap(dir, i.resolve("x.vmdk")));
    }

    /** A delta disk: created with the parent's CID; partial writes copy the rest of the grain from the parent. */
    @Test
    void deltaDiskCopiesOnWriteFromItsParent() throws IOException {
        Path q = Files.createDirectory(dir.resolve("q"));
        Path i = Files.createDirectory(dir.resolve("i"));
        img(q, "create", "-q", "-f", "vmdk", "b.vmdk", "4M");
        io(q, q.resolve("b.vmdk"), "write -P 0xaa 0 4M");
        Files.copy(q.resolve("b.vmdk"), i.resolve("b.vmdk"));
        img(q, "create", "-q", "-f", "vmdk", "-b", "b.vmdk", "-F", "vmdk", "c.vmdk");
        Imago.create(i.resolve("c.vmdk"), "vmdk", CreateOptions.builder().backingFile("b.vmdk").backingFormat("vmdk")
                .build());
        VmdkFiles.assertSameFiles(q, i, COMPARED);
        String[] commands = {"write -P 0x11 1000 3000", "write -P 0x22 100k 200k", "write -z 1M 4k"};
        io(q, q.resolve("c.vmdk"), commands);
        try (Image image = Imago.opener().path(i.resolve("c.vmdk")).writable(true).open()) {
            VmdkFiles.run(image, commands);
        }
        VmdkFiles.assertSameFiles(q, i, COMPARED);
        assertClean(i.resolve("c.vmdk"));
        img(dir, "compare", q.resolve("c.vmdk"), i.resolve("c.vmdk"));
    }

    /**
     * A zero write that must not fall back to writing zeroes ({@code qemu-io write -z -n}) fails as QEMU's does, with
     * zeroed-grain entries or without, and leaves the files as QEMU leaves them.
     */
    @ParameterizedTest
    @ValueSource(strings = {"zeroed_grain=on", "zeroed_grain=off"})
    void aZeroWriteWithoutFallbackIsRefusedAsQemuRefusesIt(String options) throws IOException {
        Path q = Files.createDirectory(dir.resolve("q"));
        Path i = Files.createDirectory(dir.resolve("i"));
        img(q, "create", "-q", "-f", "vmdk", "-o", options, "x.vmdk", "1M");
        Imago.create(i.resolve("x.vmdk"), "vmdk", options(options, 1 << 20));
        Qemu.Output o = Qemu.run(q, Qemu.io(), "-c", "write -z -n 0 64k", q.resolve("x.vmdk"));
        assertEquals("write failed: Operation not supported\n", o.out(), o.err());
        try (Image image = Imago.opener().path(i.resolve("x.vmdk")).writable(true).open()) {
            UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                    () -> image.writeZeroes(0, 64 << 10, EnumSet.of(ZeroFlag.NO_FALLBACK)));
            assertEquals(Feature.EFFICIENT_ZEROES, e.feature());
        }
        VmdkFiles.assertSameFiles(q, i, COMPARED);
        assertEquals(VmdkQemu.qemuMap(dir, q.resolve("x.vmdk")), VmdkQemu.qemuMap(dir, i.resolve("x.vmdk")));
    }

    /**
     * An image of 0 bytes is refused before any file is made: qemu-img makes one, with an extent line of 0 sectors,
     * that neither it nor imago can open.
     */
    @ParameterizedTest
    @ValueSource(strings = {"monolithicSparse", "streamOptimized"})
    void anEmptyImageIsRefusedAtCreation(String subformat) throws IOException {
        Path q = Files.createDirectory(dir.resolve("q"));
        img(q, "create", "-q", "-f", "vmdk", "-o", "subformat=" + subformat, "x.vmdk", "0");
        Qemu.Output info = Qemu.run(q, Qemu.img(), "info", "x.vmdk");
        assertEquals(1, info.status(), info.out() + info.err());
        assertThrows(ImageException.class, () -> Imago.open(q.resolve("x.vmdk")).close());
        Path i = Files.createDirectory(dir.resolve("i"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Imago.create(i.resolve("x.vmdk"), "vmdk", options("subformat=" + subformat, 0)));
        assertEquals("Image size 0 is too small for vmdk: an empty vmdk cannot be opened", e.getMessage());
        try (Stream<Path> made = Files.list(i)) {
            assertEquals(List.of(), made.toList());
        }
    }

    /** The first write after opening gives the descriptor a new CID of the same width, in place. */
    @Test
    void theFirstWriteChangesTheCidInPlace() throws IOException {
        Path image = dir.resolve("x.vmdk");
        Imago.create(image, "vmdk", CreateOptions.ofSize(1 << 20));
        byte[] before = Arrays.copyOf(Files.readAllBytes(image), 21 * 512);
        try (Image i = Imago.opener().path(image).writable(true).open()) {
            VmdkFiles.run(i, "write -P 1 0 512", "write -P 2 512 512");
        }
        byte[] after = Arrays.copyOf(Files.readAllBytes(image), 21 * 512);
        String text = new String(before, StandardCharsets.ISO_8859_1);
        int digits = text.indexOf("\nCID=") + 5;
        int end = text.indexOf('\n', digits);
        for (int k = 0; k < before.length; k++) {
            if (k < digits || k >= end) {
                assertEquals(before[k], after[k], "byte " + k + " changed");
            }
        }
        assertTrue(!Arrays.equals(before, digits, end, after, digits, end), "the CID changed");
        try (Image i = Imago.open(image)) {
            long cid = ((Number) i.info().formatSpecific().get("cid")).longValue();
            assertEquals(Long.parseLong(new String(after, digits, end - digits,
                    StandardCharsets.US_ASCII), 16), cid);
        }
    }

    private void assertClean(Path image) {
        Qemu.Output o = Qemu.run(dir, Qemu.img(), "check", image);
        assertEquals(0, o.status(), o.out() + o.err());
        assertEquals("No errors were found on the image.\n", o.out());
    }
}
