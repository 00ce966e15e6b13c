package imago.vmdk.internal;

import static imago.vmdk.internal.VmdkQemu.assertReadsAsQemu;
import static imago.vmdk.internal.VmdkQemu.img;
import static imago.vmdk.internal.VmdkQemu.io;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.Feature;
import imago.api.Image;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Images qemu-img 7.2 makes, of every subformat, read byte for byte as {@code qemu-img convert -O raw} reads them
 * and map as {@code qemu-img map --output=json} maps them. Skipped without qemu, failed under IMAGO_REQUIRE_QEMU=1.
 */
class VmdkReadDifferentialTest {
    /** Just past 2 GiB: the split subformats then have two extents (their files stay sparse). */
    static final String SPLIT_SIZE = "2049M";

    @TempDir
    Path dir;

    /** Data, a partial grain, a sector in the middle of a grain, the image's last bytes, and a run across 2 GiB. */
    private void workload(Path image, long size) {
        io(dir, image, "write -P 0x11 0 100k", "write -P 0x22 300k 1k", "write -P 0x33 " + (size - 4096) + " 4k",
                "write -P 0x44 " + (size / 2 - 64 * 1024) + " 192k");
    }

    @ParameterizedTest
    @ValueSource(strings = {"monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"})
    void subformatsQemuWrites(String subformat) throws IOException {
        boolean split = subformat.startsWith("twoGb");
        long size = split ? 2049L << 20 : (5L << 20) + 3 * 512;
        Path image = dir.resolve(subformat + ".vmdk");
        img(dir, "create", "-q", "-f", "vmdk", "-o", "subformat=" + subformat, image, Long.toString(size));
        workload(image, size);
        if (split) {
            // across the 2 GiB boundary between the two extent files
            io(dir, image, "write -P 0x55 " + ((2L << 30) - 8192) + " 16k");
        }
        assertReadsAsQemu(dir, image);
    }

    /** Zeroed-grain entries (version 2): whole grains zeroed over data and over nothing; partial zeroes written. */
    @Test
    void zeroedGrains() throws IOException {
        Path image = dir.resolve("z.vmdk");
        img(dir, "create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on,adapter_type=lsilogic", image, "4M");
        io(dir, image, "write -P 1 0 256k", "write -z 0 64k", "write -z 128k 128k", "write -z 1M 64k",
                "write -z 2M 4k", "write -P 2 3M 1k");
        assertReadsAsQemu(dir, image);
    }

    /** Compressed grains with markers, as {@code convert -O vmdk -o subformat=streamOptimized} writes them. */
    @Test
    void streamOptimizedFromConvert() throws IOException {
        Path src = randomRaw("src.raw", (3L << 20) + 5 * 512, 7);
        Path image = dir.resolve("s.vmdk");
        img(dir, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, image);
        assertReadsAsQemu(dir, image);
        try (Image i = Imago.opener().path(image).open()) {
            assertEquals(false, i.supports(Feature.OVERWRITES));
        }
    }

    /** A VMware-style stream (directory and footer at the end, grain table markers) from python3-vmdkstream. */
    @Test
    void vmdkstreamOutput() throws IOException {
        Path python = Path.of("/usr/bin/python3");
        Path module = Path.of("/usr/lib/python3/dist-packages/VMDKstream.py");
        Qemu.requireInstalled(Files.exists(module), "python3-vmdkstream is not installed");
        Path src = randomRaw("src.raw", 9L << 20, 11);
        Path image = dir.resolve("py.vmdk");
        Qemu.ok(dir, python, "-c", "import VMDKstream; VMDKstream.convert_to_stream('src.raw', 'py.vmdk')");
        assertReadsAsQemu(dir, image);
    }

    /** A child with parentFileNameHint: unallocated grains fall through to the parent (map depths included). */
    @Test
    void deltaDiskReadsThroughItsParent() throws IOException {
        Path base = dir.resolve("base.vmdk");
        img(dir, "create", "-q", "-f", "vmdk", base, "4M");
        io(dir, base, "write -P 0xaa 0 1M", "write -P 0xab 2M 64k");
        Path child = dir.resolve("child.vmdk");
        img(dir, "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", child);
        io(dir, child, "write -P 0xcc 512k 1k", "write -P 0xcd 3M 64k");
        assertReadsAsQemu(dir, child);
        try (Image i = Imago.opener().path(child).open()) {
            assertEquals("base.vmdk", i.info().backingFilename().orElseThrow());
            assertEquals("vmdk", i.info().backingFormat().orElseThrow());
        }
    }

    /** A descriptor written by hand: createType vmfs, one VMFS extent. */
    @Test
    void vmfsDescriptor() throws IOException {
        Path flat = randomRaw("disk-flat.vmdk", 2L << 20, 3);
        Path image = dir.resolve("disk.vmdk");
        Files.writeString(image, descriptor("vmfs", "RW " + (Files.size(flat) / 512) + " VMFS \"disk-flat.vmdk\"\n"));
        assertReadsAsQemu(dir, image);
    }

    /** Mixed extents in one descriptor: flat with an offset, a sparse file, and a VMFS flat file. */
    @Test
    void customDescriptorWithMixedExtents() throws IOException {
        randomRaw("a.raw", 1L << 20, 5);
        Path sparse = dir.resolve("b.vmdk");
        img(dir, "create", "-q", "-f", "vmdk", sparse, "3M");
        io(dir, sparse, "write -P 0x5b 64k 200k", "write -P 0x5c 2M 4k");
        randomRaw("c.raw", 512L << 10, 6);
        Path image = dir.resolve("mixed.vmdk");
        Files.writeString(image, descriptor("twoGbMaxExtentSparse",
                "RW 1024 FLAT \"a.raw\" 1024\n"         // the second half of a.raw
                        + "RW 6144 SPARSE \"b.vmdk\"\n"
                        + "RW 1024 VMFS \"c.raw\"\n"));
        assertReadsAsQemu(dir, image);
    }

    /** Version 3 without compression (changed-block tracking) reads as version 1, but only for reading. */
    @Test
    void version3ReadsButDoesNotWrite() throws IOException {
        Path image = dir.resolve("v3.vmdk");
        img(dir, "create", "-q", "-f", "vmdk", image, "2M");
        io(dir, image, "write -P 7 0 70k");
        patchInt(image, 4, 3);
        assertReadsAsQemu(dir, image);
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> Imago.opener().path(image).writable(true).open().close());
        assertEquals("VMDK version 3", e.featureName());
    }

    /** Without the redundant-directory flag, only the primary directory is read. */
    @Test
    void withoutRedundantDirectory() throws IOException {
        Path image = dir.resolve("nr.vmdk");
        img(dir, "create", "-q", "-f", "vmdk", image, "2M");
        io(dir, image, "write -P 9 100k 70k");
        patchInt(image, 8, VmdkSparseHeader.FLAG_NL_DETECT);
        patchInt(image, 48, 0);
        assertReadsAsQemu(dir, image);
    }

    /**
     * An ESX snapshot: a vmfsSparse delta ({@code COWD}, 512-byte grains, 4096 entries per table, one table left
     * out) over a vmfs flat base, built by hand as QEMU cannot create one; read as QEMU reads it.
     */
    @Test
    void vmfsSparseDeltaOverAVmfsBase() throws IOException {
        randomRaw("base-flat.vmdk", 3L << 20, 21);
        Files.writeString(dir.resolve("base.vmdk"), descriptor("vmfs", "RW 6144 VMFS \"base-flat.vmdk\"\n"));
        long capacity = 6144;
        int tables = 2;                      // 4096 sectors each: the last 2048 sectors have no table entry at all
        ByteBuffer cowd = ByteBuffer.allocate((40 + 20) * 512).order(ByteOrder.LITTLE_ENDIAN);
        cowd.order(ByteOrder.BIG_ENDIAN).putInt(0, VmdkSparseFiles.COWD_MAGIC).order(ByteOrder.LITTLE_ENDIAN);
        cowd.putInt(4, 1).putInt(8, 3).putInt(12, (int) capacity).putInt(16, 1).putInt(20, 4).putInt(24, tables);
        cowd.putInt(4 * 512, 5).putInt(4 * 512 + 4, 0);  // table 0 at sector 5, table 1 absent
        for (int g = 0; g < 20; g++) {
            int sector = 40 + g;
            cowd.putInt(5 * 512 + 4 * (g * 97 % 4000), sector);
            for (int k = 0; k < 512; k++) {
                cowd.put(sector * 512 + k, (byte) (g * 31 + k));
            }
        }
        Files.write(dir.resolve("delta-delta.vmdk"), cowd.array());
        Files.writeString(dir.resolve("delta.vmdk"), descriptor("vmfsSparse", "RW " + capacity
                + " VMFSSPARSE \"delta-delta.vmdk\"\n").replace("parentCID=ffffffff", "parentCID=12ab34cd")
                .replace("createType=\"vmfsSparse\"", "createType=\"vmfsSparse\"\nparentFileNameHint=\"base.vmdk\""));
        assertReadsAsQemu(dir, dir.resolve("delta.vmdk"));
        assertThrows(ReadOnlyImageException.class, () -> {
            try (Image i = Imago.opener().path(dir.resolve("delta.vmdk")).writable(true).open()) {
                i.write(ByteBuffer.allocate(512), 0);
            }
        });
    }

    /**
     * An seSparse extent (4 KiB grains, 64-bit entries: allocated, zero, unmapped and unallocated grains, grain
     * numbers past 4095 split across the entry's bit fields), built by hand as QEMU cannot create one; read as QEMU
     * reads it, and never written.
     */
    @Test
    void seSparse() throws IOException {
        int grains = 256;                    // 1 MiB
        ByteBuffer f = ByteBuffer.allocate((71 + 4200 * 8) * 512).order(ByteOrder.LITTLE_ENDIAN);
        f.putLong(0, VmdkSeSparseExtent.CONST_MAGIC).putLong(8, 0x2_0000_0001L).putLong(16, grains * 8L)
                .putLong(24, 8).putLong(32, 64).putLong(80, 1).putLong(88, 1).putLong(96, 2).putLong(104, 1)
                .putLong(112, 3).putLong(120, 1).putLong(128, 4).putLong(136, 1).putLong(144, 5).putLong(152, 64)
                .putLong(160, 69).putLong(168, 1).putLong(176, 70).putLong(184, 1).putLong(192, 71)
                .putLong(200, 4200 * 8);
        f.putLong(512, VmdkSeSparseExtent.VOLATILE_MAGIC);
        f.putLong(4 * 512, 0x1000_0000_0000_0000L);
        SplittableRandom r = new SplittableRandom(4);
        for (int g = 0; g < grains; g++) {
            long entry = switch (g % 5) {
                case 0 -> 0;
                case 1 -> 0x2000_0000_0000_0000L;
                case 2 -> 0x1000_0000_0000_0000L;
                default -> {
                    long cluster = g + (g % 7 == 0 ? 3900 : 0);
                    for (int k = 0; k < 4096; k++) {
                        f.put((int) ((71 + cluster * 8) * 512) + k, (byte) r.nextInt());
                    }
                    yield 0x3000_0000_0000_0000L | ((cluster & 0xFFF) << 48) | (cluster >>> 12);
                }
            };
            f.putLong(5 * 512 + 8 * g, entry);
        }
        Files.write(dir.resolve("x-sesparse.vmdk"), f.array());
        Path image = dir.resolve("se.vmdk");
        Files.writeString(image, descriptor("seSparse", "RW " + grains * 8 + " SESPARSE \"x-sesparse.vmdk\"\n"));
        assertReadsAsQemu(dir, image);
        try (Image i = Imago.opener().path(image).writable(true).open()) {
            assertThrows(ReadOnlyImageException.class, () -> i.write(ByteBuffer.allocate(512), 0));
        }
    }

    private String descriptor(String createType, String extents) {
        return "# Disk DescriptorFile\nversion=1\nCID=12ab34cd\nparentCID=ffffffff\ncreateType=\"" + createType
                + "\"\n\n# Extent description\n" + extents + "\n# The Disk Data Base\n#DDB\n\n"
                + "ddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n";
    }

    private Path randomRaw(String name, long size, int seed) throws IOException {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] b = new byte[(int) size];
        for (int i = 0; i < b.length; i += 4096) {
            switch (r.nextInt(4)) {
                case 0 -> { } // zeroes
                case 1 -> Arrays.fill(b, i, Math.min(b.length, i + 4096), (byte) r.nextInt(256));
                default -> {
                    for (int j = i; j < Math.min(b.length, i + 4096); j++) {
                        b[j] = (byte) (r.nextInt(8) == 0 ? r.nextInt(256) : j >> 5);
                    }
                }
            }
        }
        return Files.write(dir.resolve(name), b);
    }

    private static void patchInt(Path file, long at, int value) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(value).flip(), at);
        }
    }
}
