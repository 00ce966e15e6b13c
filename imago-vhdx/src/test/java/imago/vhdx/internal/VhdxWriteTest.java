package imago.vhdx.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.QemuWorkloads;
import imago.testkit.VhdiInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What imago writes, qemu-img reads: the same writes through qemu-io and through imago on two copies of one
 * qemu-img image give files that {@code qemu-img compare} finds identical, that {@code qemu-img check} and
 * vhdiinfo accept, and that are byte for byte equal but for the headers and the log (whose GUIDs are random): the
 * same blocks at the same places, the same BAT.
 */
class VhdxWriteTest {

    private static void compareWithQemu(Path dir, String options, List<String> commands, boolean sameLayout)
            throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vhdx", "-o", options, "q.vhdx", 40L << 20);
        Path q = dir.resolve("q.vhdx");
        Path i = dir.resolve("i.vhdx");
        Files.copy(q, i, StandardCopyOption.REPLACE_EXISTING);
        QemuReads.qemuIo(dir, "vhdx", "q.vhdx", commands);
        try (Image image = Imago.opener().path(i).writable(true).open()) {
            QemuWorkloads.writeThroughImago(image, commands);
            image.flush();
        }
        Qemu.Output cmp = Qemu.compare(q, "vhdx", i, "vhdx");
        assertEquals(0, cmp.status(), cmp.out() + cmp.err());
        Qemu.Output check = Qemu.check(i, "vhdx");
        assertEquals(0, check.status(), check.out() + check.err());
        VhdiInfo.run(dir, i);
        QemuReads.assertReadsLikeQemu(dir, i, "vhdx");
        if (sameLayout) {
            byte[] qb = Files.readAllBytes(q);
            byte[] ib = Files.readAllBytes(i);
            assertEquals(qb.length, ib.length, "file length");
            long logLength = VhdxFields.le(qb).getInt((int) VhdxFields.HEADER_OFFSETS[0] + 68) & 0xFFFF_FFFFL;
            for (byte[] b : new byte[][] {qb, ib}) {
                Arrays.fill(b, (int) VhdxFields.HEADER_OFFSETS[0], (int) VhdxFields.REGION_TABLE_OFFSETS[0], (byte) 0);
                Arrays.fill(b, (int) VhdxFields.MIB, (int) (VhdxFields.MIB + logLength), (byte) 0);
            }
            assertArrayEquals(qb, ib, "the files outside the headers and the log");
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"block_size=1M", "block_size=2M,block_state_zero=off", "block_size=8M,log_size=2M",
        "subformat=fixed,block_size=1M", "subformat=fixed,block_state_zero=off,block_size=1M"})
    void writesLikeQemuIo(String options, @TempDir Path dir) throws IOException {
        compareWithQemu(dir, options, List.of("write -P 0x11 0 65536", "write -P 0x22 " + (5L << 20) + " 4096",
                "write -P 0x33 " + ((3L << 20) - 512) + " 8192", "write -P 0x44 512 1536",
                "write -z 1024 4096", "write -P 0x55 " + ((40L << 20) - 512) + " 512",
                "write -P 0x66 " + (17L << 20) + " " + (3 << 20)), true);
    }

    /** Random writes and zero writes: the same contents (zero writes over empty blocks allocate nothing here). */
    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2})
    void randomWritesReadBackInQemu(long seed, @TempDir Path dir) throws IOException {
        Random r = new Random(seed);
        List<String> ops = QemuWorkloads.randomWrites(r, 40L << 20, 25, 3000);
        compareWithQemu(dir, r.nextBoolean() ? "block_size=1M" : "block_size=4M,block_state_zero=off", ops, false);
    }

    /** QEMU's vhdx has no zero writes: {@code write -z -n} is refused as qemu-io refuses it. */
    @Test
    void zeroWritesThatMustNotFallBackAreRefused(@TempDir Path dir) throws IOException {
        Path i = dir.resolve("i.vhdx");
        Imago.create(i, "vhdx", imago.api.CreateOptions.builder().size(8 << 20).option("block_size", "1M").build());
        try (Image image = Imago.opener().path(i).writable(true).open()) {
            image.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 4096);
            assertThrows(UnsupportedFeatureException.class,
                    () -> image.writeZeroes(0, 1 << 20, Set.of(ZeroFlag.NO_FALLBACK)));
            image.writeZeroes(0, 2 << 20, Set.of(ZeroFlag.MAY_UNMAP));
            byte[] back = new byte[8192];
            image.read(ByteBuffer.wrap(back), 0);
            assertTrue(Arrays.equals(new byte[8192], back));
        }
        assertEquals(0, Qemu.check(i, "vhdx").status());
    }
}
