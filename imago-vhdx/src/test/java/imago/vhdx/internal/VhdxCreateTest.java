package imago.vhdx.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.VhdiInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * New images are byte for byte what qemu-img 7.2 writes for the same size and options, once the GUIDs and the
 * header sequence number (random by nature) are taken from qemu-img's image and the creator string is set aside;
 * qemu-img, its check and libvhdi's vhdiinfo accept what the driver creates.
 */
class VhdxCreateTest {
    private static final AtomicInteger NAMES = new AtomicInteger();

    /**
     * @param options the {@code -o} options
     * @param size the requested size
     */
    record Case(String options, long size) {
        @Override
        public String toString() {
            return (options.isEmpty() ? "default" : options) + " " + size;
        }

        String option(String key, String otherwise) {
            for (String kv : options.split(",")) {
                if (kv.startsWith(key + "=")) {
                    return kv.substring(key.length() + 1);
                }
            }
            return otherwise;
        }

        VhdxCreate.Plan plan() {
            return VhdxCreate.plan(size, VhdxFormatDriver.parseSize(option("block_size", "0"), "block_size"),
                    VhdxFormatDriver.parseSize(option("log_size", "1M"), "log_size"),
                    option("subformat", "dynamic").equals("fixed"), option("block_state_zero", "on").equals("on"));
        }
    }

    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        for (String o : List.of("", "block_state_zero=off", "block_size=1M,log_size=2M", "block_size=1536k",
                "block_size=512M,log_size=1536k", "subformat=fixed", "subformat=fixed,block_state_zero=off")) {
            out.add(new Case(o, 1000));
            out.add(new Case(o, (24L << 20) + 7));
        }
        // block sizes by size (8, 16, 32, 64 MiB), a BAT over 1 MiB, a sector bitmap entry inside the BAT
        for (long s : new long[] {1L << 30, (1L << 30) + 512, 100L << 30, (100L << 30) + 512, 33L << 40}) {
            out.add(new Case("", s));
        }
        out.add(new Case("block_size=1M", 5L << 30));
        out.add(new Case("block_size=1M,block_state_zero=off", 200L << 30));
        out.add(new Case("subformat=fixed,block_state_zero=off,block_size=1M", 5L << 30));
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void createsWhatQemuImgCreates(Case c, @TempDir Path dir) throws IOException {
        Qemu.require();
        List<Object> cmd = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "vhdx"));
        if (!c.options().isEmpty()) {
            cmd.addAll(List.of("-o", c.options()));
        }
        cmd.addAll(List.of("q.vhdx", c.size()));
        Qemu.ok(dir, cmd.toArray());
        Path q = dir.resolve("q.vhdx");
        VhdxCreate.Plan plan = c.plan();
        // the data area of a fixed disk is a hole in both files: compare the metadata part
        byte[] qemu = read(q, plan.dataOffset());
        ByteBuffer qb = VhdxFields.le(qemu);
        VhdxHeader h = VhdxHeader.parse(qb.slice((int) VhdxFields.HEADER_OFFSETS[0], VhdxFields.HEADER_LENGTH)
                .order(qb.order()));
        UUID page83 = VhdxFields.guid(qb, (int) (plan.metadataOffset() + VhdxMetadata.TABLE_LENGTH + 16));
        Deque<UUID> guids = new ArrayDeque<>(List.of(h.fileWriteGuid(), h.dataWriteGuid(), page83));

        String name = "create-" + NAMES.incrementAndGet();
        try (MemoryStorage s = MemoryStorage.create(name)) {
            VhdxCreate.create(s, plan, guids::removeFirst, h.sequence());
            assertEquals(Files.size(q), s.size(), "file length");
            byte[] ours = new byte[qemu.length];
            s.read(ByteBuffer.wrap(ours), 0);
            // the creator string is ours ("imago"), not "QEMU v7.2..."
            java.util.Arrays.fill(qemu, 8, 8 + 512, (byte) 0);
            java.util.Arrays.fill(ours, 8, 8 + 512, (byte) 0);
            assertArrayEquals(qemu, ours);
        } finally {
            MemoryStorage.delete(name);
        }
    }

    private static byte[] read(Path file, long length) throws IOException {
        byte[] out = new byte[(int) Math.min(length, Files.size(file))];
        try (SeekableByteChannel ch = Files.newByteChannel(file)) {
            ByteBuffer b = ByteBuffer.wrap(out);
            while (b.hasRemaining() && ch.read(b) > 0) {
                // read on
            }
        }
        return out;
    }

    /** Through the driver (random GUIDs): qemu-img, its check and vhdiinfo see the size qemu-img would make. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void qemuImgAndVhdiinfoAcceptWhatTheDriverCreates(Case c, @TempDir Path dir) throws IOException {
        if (c.size() > (1L << 40)) {
            return;
        }
        Qemu.require();
        Path img = dir.resolve("i.vhdx");
        CreateOptions.Builder b = CreateOptions.builder().size(c.size());
        if (!c.options().isEmpty()) {
            for (String kv : c.options().split(",")) {
                b.option(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
            }
        }
        Imago.create(img, "vhdx", b.build());
        long expected = c.plan().size();
        assertEquals(expected, QemuReads.qemuSize(dir, img, "vhdx"));
        Qemu.Output check = Qemu.check(img, "vhdx");
        assertEquals(0, check.status(), check.out() + check.err());
        VhdiInfo.assertDisk(dir, img, expected, c.option("subformat", "dynamic").equals("fixed"));
        try (Image image = Imago.opener().path(img).open()) {
            assertEquals("vhdx", image.format());
            assertEquals(expected, image.size());
        }
    }

    @Test
    void refusesWhatQemuImgRefuses() throws IOException {
        var d = new VhdxFormatDriver();
        try (MemoryStorage s = MemoryStorage.create("refuse-" + NAMES.incrementAndGet())) {
            assertEquals("Block size must be a power of two", assertThrows(IllegalArgumentException.class,
                    () -> d.create(s, CreateOptions.builder().size(1 << 20).option("block_size", "3M").build()))
                    .getMessage());
            assertEquals("Image size too large; max of 64TB", assertThrows(IllegalArgumentException.class,
                    () -> d.create(s, CreateOptions.builder().size(65L << 40).build())).getMessage());
            assertEquals("Log size must be a multiple of 1 MB", assertThrows(IllegalArgumentException.class,
                    () -> d.create(s, CreateOptions.builder().size(1 << 20).option("log_size", "0").build()))
                    .getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> d.create(s, CreateOptions.builder().size(1 << 20).option("subformat", "sparse").build()));
            assertThrows(IllegalArgumentException.class,
                    () -> d.create(s, CreateOptions.builder().size(1 << 20).option("cluster_size", "1M").build()));
            assertEquals(0, s.size(), "nothing written");
        }
    }
}
