package imago.vmdk.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Extent;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.OpenDeniedException;
import imago.api.OpenGate;
import imago.api.OpenRequest;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Extent files are untrusted names (the CVE-2022-47951 class): opened only by the probe module, through the gate,
 * once each; and the access and kinds of extent lines mean what VMware's format says.
 */
class VmdkExtentFilesTest {
    @TempDir
    Path dir;

    private Path descriptor(String name, String createType, String extents) throws IOException {
        return Files.writeString(dir.resolve(name), "# Disk DescriptorFile\nversion=1\nCID=fffffffe\n"
                + "parentCID=ffffffff\ncreateType=\"" + createType + "\"\n\n" + extents);
    }

    private Path raw(String name, int size, int fill) throws IOException {
        byte[] b = new byte[size];
        Arrays.fill(b, (byte) fill);
        return Files.write(dir.resolve(name), b);
    }

    private static byte[] read(Image image, long offset, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        image.read(b, offset);
        return b.array();
    }

    @ParameterizedTest
    @ValueSource(strings = {"/etc/passwd", "../../etc/passwd", "/dev/zero", "sub/../../outside.raw"})
    void confinedRefusesNamesOutsideTheDirectory(String name) throws IOException {
        Path d = descriptor("evil.vmdk", "monolithicFlat", "RW 1 FLAT \"" + name + "\" 0\n");
        OpenDeniedException e = assertThrows(OpenDeniedException.class,
                () -> Imago.opener().path(d).gate(OpenGate.confinedTo(dir)).open());
        assertTrue(e.getMessage().contains(name), e.getMessage());
    }

    /** Permissive (qemu-img's behaviour) opens it, but the gate sees the request first, as an extent file. */
    @Test
    void theGateSeesEveryExtentFileAsSuch() throws IOException {
        raw("a.raw", 4096, 1);
        raw("b.raw", 4096, 2);
        Path d = descriptor("two.vmdk", "monolithicFlat", "RW 8 FLAT \"a.raw\" 0\nRW 4 FLAT \"b.raw\" 4\n"
                + "RW 4 FLAT \"a.raw\" 4\n");
        List<OpenRequest> seen = new ArrayList<>();
        try (Image i = Imago.opener().path(d).gate(seen::add).open()) {
            assertEquals(16 * 512, i.size());
            assertArrayEquals(new byte[] {1, 2, 1}, new byte[] {read(i, 0, 1)[0], read(i, 4096, 1)[0],
                read(i, 6144, 1)[0]});
        }
        assertEquals(List.of("a.raw", "b.raw"), seen.stream().map(OpenRequest::storedName).toList());
        assertTrue(seen.stream().allMatch(r -> r.purpose() == OpenRequest.Purpose.EXTENT_FILE));
    }

    @Test
    void aDescriptorNamingItselfIsRefused() throws IOException {
        Path d = descriptor("self.vmdk", "monolithicFlat", "RW 1 FLAT \"self.vmdk\" 0\n");
        CorruptImageException e = assertThrows(CorruptImageException.class, () -> Imago.open(d));
        assertTrue(e.getMessage().contains("the image itself"), e.getMessage());
    }

    /** A SPARSE extent must be a sparse file: a descriptor there is refused, so descriptors never nest or loop. */
    @Test
    void descriptorsDoNotNest() throws IOException {
        descriptor("inner.vmdk", "twoGbMaxExtentSparse", "RW 1 SPARSE \"outer.vmdk\"\n");
        Path outer = descriptor("outer.vmdk", "twoGbMaxExtentSparse", "RW 1 SPARSE \"inner.vmdk\"\n");
        CorruptImageException e = assertThrows(CorruptImageException.class, () -> Imago.open(outer));
        assertTrue(e.getMessage().contains("inner.vmdk: Image not in VMDK format"), e.getMessage());
    }

    @Test
    void aParentThatIsTheChildIsALoop() throws IOException {
        Path d = descriptor("loop.vmdk", "monolithicFlat", "parentFileNameHint=\"loop.vmdk\"\nRW 1 ZERO\n");
        CorruptImageException e = assertThrows(CorruptImageException.class, () -> Imago.open(d));
        assertTrue(e.getMessage().contains("loops"), e.getMessage());
    }

    @Test
    void oneSparseFileCannotBeTwoExtents() throws IOException {
        VmdkQemu.img(dir, "create", "-q", "-f", "vmdk", dir.resolve("s.vmdk"), "1M");
        Path d = descriptor("twice.vmdk", "twoGbMaxExtentSparse",
                "RW 2048 SPARSE \"s.vmdk\"\nRW 2048 SPARSE \"s.vmdk\"\n");
        CorruptImageException e = assertThrows(CorruptImageException.class, () -> Imago.open(d));
        assertTrue(e.getMessage().contains("named by several lines"), e.getMessage());
    }

    /**
     * ZERO extents read as zeroes and RDONLY ones read but refuse writes (the format's meaning; QEMU 7.2 skips ZERO
     * lines, shifting what follows); NOACCESS extents are not opened, and touching them is an error.
     */
    @Test
    void accessAndZeroExtents() throws IOException {
        raw("a.raw", 4096, 0xa);
        raw("b.raw", 4096, 0xb);
        Path d = descriptor("acc.vmdk", "monolithicFlat", "RW 8 FLAT \"a.raw\" 0\nRDONLY 4 ZERO\n"
                + "RDONLY 8 FLAT \"b.raw\" 0\nNOACCESS 8 FLAT \"never.raw\" 0\n");
        try (Image i = Imago.opener().path(d).writable(true).open()) {
            assertEquals(28 * 512, i.size());
            assertEquals(0xa, read(i, 4095, 1)[0]);
            assertArrayEquals(new byte[2048], read(i, 4096, 2048));
            assertEquals(0xb, read(i, 6144, 1)[0]);
            List<Extent> map = i.extents(0, 6144 + 4096);
            assertTrue(map.get(1).zero() && !map.get(1).data(), map.toString());
            assertThrows(ReadOnlyImageException.class, () -> i.write(ByteBuffer.allocate(512), 6144));
            assertThrows(UnsupportedFeatureException.class, () -> i.write(ByteBuffer.allocate(512), 4096));
            ImageException noAccess = assertThrows(ImageException.class, () -> read(i, 10240, 512));
            assertTrue(noAccess.getMessage().contains("NOACCESS"), noAccess.getMessage());
            i.write(ByteBuffer.wrap(new byte[] {5}), 0);
            assertEquals(5, read(i, 0, 1)[0]);
        }
        assertEquals(5, Files.readAllBytes(dir.resolve("a.raw"))[0]);
        assertEquals(0xb, Files.readAllBytes(dir.resolve("b.raw"))[0]);
    }

    /** A descriptor of 100 MB is refused before it is read; one of 100k extents when the limit is reached. */
    @Test
    void hugeDescriptorsAreRefusedEarly() throws IOException {
        Path big = dir.resolve("big.vmdk");
        Files.writeString(big, "# Disk DescriptorFile\nversion=1\n");
        try (var ch = FileChannel.open(big, StandardOpenOption.WRITE)) {
            ch.truncate(100L << 20);
            ch.write(ByteBuffer.wrap(new byte[] {'\n'}), (100L << 20) - 1);
        }
        ImageLimitException e = assertThrows(ImageLimitException.class, () -> Imago.open(big));
        assertTrue(e.getMessage().contains("larger than the limit"), e.getMessage());

        StringBuilder many = new StringBuilder();
        for (int i = 0; i < 100_000; i++) {
            many.append("RW 1 ZERO\n");
        }
        Path lots = descriptor("lots.vmdk", "monolithicFlat", many.toString());
        assertThrows(ImageLimitException.class, () -> Imago.open(lots));
    }
}
