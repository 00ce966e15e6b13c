package imago.vmdk.internal;

import static imago.vmdk.internal.VmdkQemu.img;
import static imago.vmdk.internal.VmdkQemu.io;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A delta disk whose parent changed after it was made (the parent's CID is no longer the delta's {@code parentCID})
 * is refused where it would need the parent's bytes, exactly where QEMU refuses it: reads that fall through to the
 * parent, and writes that allocate a grain. Its own grains stay readable and writable, and {@code map} and
 * {@code info} still work. Each case runs through qemu-io and imago on the same files.
 */
class VmdkParentCidTest {
    @TempDir
    Path dir;

    /** base.vmdk holds 0x11 in its first 128 KiB; top.vmdk, made from it, holds 0x22 at [64k, 128k). */
    @BeforeEach
    void chain() {
        img(dir, "create", "-q", "-f", "vmdk", "base.vmdk", "1M");
        io(dir, dir.resolve("base.vmdk"), "write -P 0x11 0 128k");
        img(dir, "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", "top.vmdk");
        io(dir, dir.resolve("top.vmdk"), "write -P 0x22 64k 64k");
    }

    @Test
    void anUnchangedParentIsRead() throws IOException {
        try (Image top = Imago.open(dir.resolve("top.vmdk"))) {
            assertArrayEquals(filled(0x11, 4096), read(top, 0, 4096));
        }
    }

    @Test
    void aParentChangedByImagoIsRefusedWhereQemuRefusesIt() throws IOException {
        long before = cid(dir.resolve("base.vmdk"));
        try (Image base = Imago.opener().path(dir.resolve("base.vmdk")).writable(true).open()) {
            base.write(ByteBuffer.wrap(filled(0x33, 512)), 512 << 10);
        }
        assertNotEquals(before, cid(dir.resolve("base.vmdk")), "a change gives the parent a new CID");
        assertRefusedAsQemuRefuses(before);
    }

    @Test
    void aParentChangedByQemuIsRefusedToo() throws IOException {
        long before = cid(dir.resolve("base.vmdk"));
        io(dir, dir.resolve("base.vmdk"), "write -P 0x33 512k 512");
        assertRefusedAsQemuRefuses(before);
    }

    private void assertRefusedAsQemuRefuses(long parentCid) throws IOException {
        Path top = dir.resolve("top.vmdk");
        // reads: through the parent refused, the delta's own grain served
        assertEquals(1, Qemu.run(dir, Qemu.io(), "-c", "read 0 4k", top).status());
        assertEquals(0, Qemu.run(dir, Qemu.io(), "-c", "read -P 0x22 64k 4k", top).status());
        try (Image image = Imago.open(top)) {
            CorruptImageException e = assertThrows(CorruptImageException.class, () -> read(image, 0, 4096));
            assertTrue(e.getMessage().contains(String.format("parentCID is %08x, the parent's CID is %08x",
                    parentCid, cid(dir.resolve("base.vmdk")))), e.getMessage());
            assertArrayEquals(filled(0x22, 4096), read(image, 64 << 10, 4096));
            assertEquals(VmdkQemu.qemuMap(dir, top), VmdkQemu.imagoMap(image), "map still works");
            assertEquals(parentCid, ((Number) image.info().formatSpecific().get("parent-cid")).longValue());
        }
        // writes: allocating a grain refused, writing into the delta's own grain allowed
        Path copy = Files.copy(top, dir.resolve("top-qemu.vmdk"));
        assertEquals(1, Qemu.run(dir, Qemu.io(), "-c", "write -P 0x44 0 4k", copy).status());
        assertEquals(0, Qemu.run(dir, Qemu.io(), "-c", "write -P 0x44 64k 4k", copy).status());
        try (Image image = Imago.opener().path(top).writable(true).open()) {
            assertThrows(CorruptImageException.class, () -> image.write(ByteBuffer.wrap(filled(0x44, 4096)), 0));
            image.write(ByteBuffer.wrap(filled(0x44, 4096)), 64 << 10);
        }
        try (Image image = Imago.open(top)) {
            assertArrayEquals(filled(0x44, 4096), read(image, 64 << 10, 4096));
        }
        assertEquals(0, Qemu.run(dir, Qemu.io(), "-c", "read -P 0x44 64k 4k", top).status());
    }

    private static long cid(Path image) throws IOException {
        try (Image i = Imago.open(image)) {
            return ((Number) i.info().formatSpecific().get("cid")).longValue();
        }
    }

    private static byte[] read(Image image, long offset, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        image.read(b, offset);
        return b.array();
    }

    private static byte[] filled(int value, int length) {
        byte[] b = new byte[length];
        Arrays.fill(b, (byte) value);
        return b;
    }
}
