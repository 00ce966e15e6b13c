package imago.vhdx.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CheckReport;
import imago.api.Image;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The log: a log qemu-io wrote (left behind by its {@code abort} after the write, and made pending again by undoing
 * its BAT change and naming it in the header) is replayed by a writable open as {@code qemu-img check -r all}
 * replays it, refused by a read-only open as QEMU refuses it, and reported fixed by {@code check -r all}; a torn
 * entry is not replayed; logs the test writes itself show that a sequence is replayed from its tail, in order, with
 * data and zero descriptors, and that entries of another log GUID or with a bad checksum are passed over.
 */
class VhdxLogTest {
    private static final long BAT = 2 << 20;
    private static final long LOG = 1 << 20;

    /**
     * An 8 MiB image with 1 MiB blocks where qemu-io wrote block 0 and left its log entry; the BAT page is put back
     * as it was before and the current header names the entry's log GUID: a log that needs to be replayed.
     *
     * @return the expected contents after replay
     */
    private static byte[] pendingQemuLog(Path dir, Path img) throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", img, 8 << 20);
        byte[] before = Files.readAllBytes(img);
        Qemu.run(dir, "qemu-io", "-f", "vhdx", "-c", "write -P 0x5a 0 64k", "-c", "write -P 0x6b 64k 4k", "-c", "abort",
                img);
        Path raw = dir.resolve("expected.raw");
        Qemu.ok(dir, "qemu-img", "convert", "-f", "vhdx", "-O", "raw", img, raw);
        byte[] expected = Files.readAllBytes(raw);
        assertEquals(0x5a, expected[0]);
        ByteBuffer entry = readAt(img, LOG, 64);
        assertEquals(VhdxFields.LOG_ENTRY_SIGNATURE, entry.getInt(0), "qemu-io left its log entry");
        writeAt(img, BAT, ByteBuffer.wrap(before, (int) BAT, 4096)); // the BAT entry as it was
        setLogGuid(img, VhdxFields.guid(entry, 32));
        return expected;
    }

    /** Makes the current header name {@code guid} as its log (a correct checksum, the same sequence number). */
    static void setLogGuid(Path img, UUID guid) throws IOException {
        int slot = 0;
        VhdxHeader[] h = new VhdxHeader[2];
        for (int i = 0; i < 2; i++) {
            h[i] = VhdxHeader.parse(readAt(img, VhdxFields.HEADER_OFFSETS[i], VhdxFields.HEADER_LENGTH));
        }
        if (h[1] != null && (h[0] == null || h[1].sequence() > h[0].sequence())) {
            slot = 1;
        }
        VhdxHeader c = h[slot];
        VhdxHeader patched = new VhdxHeader(c.sequence(), c.fileWriteGuid(), c.dataWriteGuid(), guid, 0, 1,
                c.logLength(), c.logOffset());
        writeAt(img, VhdxFields.HEADER_OFFSETS[slot], patched.toBytes());
    }

    static VhdxHeader currentHeader(Path img) throws IOException {
        VhdxHeader a = VhdxHeader.parse(readAt(img, VhdxFields.HEADER_OFFSETS[0], VhdxFields.HEADER_LENGTH));
        VhdxHeader b = VhdxHeader.parse(readAt(img, VhdxFields.HEADER_OFFSETS[1], VhdxFields.HEADER_LENGTH));
        return b == null || a != null && a.sequence() > b.sequence() ? a : b;
    }

    static ByteBuffer readAt(Path img, long at, int length) throws IOException {
        ByteBuffer b = VhdxFields.le(length);
        try (FileChannel ch = FileChannel.open(img)) {
            ch.read(b, at);
        }
        return b.flip();
    }

    static void writeAt(Path img, long at, ByteBuffer b) throws IOException {
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(b.duplicate(), at);
        }
    }

    private static byte[] contents(Path img) throws IOException {
        try (Image image = Imago.opener().path(img).open()) {
            return QemuReads.readAll(image);
        }
    }

    @Test
    void readOnlyOpensRefuseALogToReplayAsQemuDoes(@TempDir Path dir) throws IOException {
        Path img = dir.resolve("l.vhdx");
        pendingQemuLog(dir, img);
        ReadOnlyImageException e = assertThrows(ReadOnlyImageException.class, () -> Imago.opener().path(img).open());
        assertTrue(e.getMessage().contains("contains a log that needs to be replayed"), e.getMessage());
        assertTrue(e.getMessage().contains("check -r all"), e.getMessage());
        Qemu.Output q = Qemu.run(dir, "qemu-img", "info", "-f", "vhdx", img);
        assertTrue(q.status() != 0 && q.err().contains("contains a log that needs to be replayed"), q.err());
    }

    @Test
    void aWritableOpenReplaysTheLogAsQemuImgCheckDoes(@TempDir Path dir) throws IOException {
        Path img = dir.resolve("l.vhdx");
        byte[] expected = pendingQemuLog(dir, img);
        Path byQemu = dir.resolve("q.vhdx");
        Files.copy(img, byQemu);
        Qemu.Output repaired = Qemu.run(dir, "qemu-img", "check", "-r", "all", "-f", "vhdx", byQemu);
        assertEquals(0, repaired.status(), repaired.out() + repaired.err());

        try (Image image = Imago.opener().path(img).writable(true).open()) {
            assertArrayEquals(expected, QemuReads.readAll(image));
        }
        assertFalse(currentHeader(img).hasLog(), "the log GUID is cleared after the replay");
        assertArrayEquals(expected, contents(img));
        assertEquals(0, Qemu.check(img, "vhdx").status());
        assertEquals(0, Qemu.compare(img, "vhdx", byQemu, "vhdx").status());
        assertArrayEquals(readAt(byQemu, BAT, 4096).array(), readAt(img, BAT, 4096).array(), "the same BAT");
    }

    @Test
    void checkRepairAllReplaysAndCountsAFixedCorruption(@TempDir Path dir) throws IOException {
        Path img = dir.resolve("l.vhdx");
        byte[] expected = pendingQemuLog(dir, img);
        try (Image image = Imago.opener().path(img).writable(true).forCheck(true).open()) {
            CheckReport r = image.check(Repair.ALL);
            assertEquals(1, r.corruptionsFixed(), r.toString());
            assertEquals(0, r.corruptions(), r.toString());
        }
        assertArrayEquals(expected, contents(img));
    }

    @Test
    void aTornEntryIsNotReplayed(@TempDir Path dir) throws IOException {
        Path img = dir.resolve("l.vhdx");
        pendingQemuLog(dir, img);
        ByteBuffer one = readAt(img, LOG + 4096 + 100, 1);
        writeAt(img, LOG + 4096 + 100, ByteBuffer.wrap(new byte[] {(byte) ~one.get(0)}));
        byte[] data = contents(img); // no valid log: a read-only open is fine, and nothing was applied
        assertArrayEquals(new byte[data.length], data);
    }

    // ------------------------------------------------------------------ logs the test writes

    /** A descriptor: 4 KiB of {@code data} at {@code fileOffset}, or (data null) {@code zeroLength} zero bytes. */
    record Descriptor(long fileOffset, byte[] data, long zeroLength) {
    }

    /** A log entry as the specification lays it out. */
    static ByteBuffer entry(long tail, long sequence, UUID guid, long fileSize, List<Descriptor> descriptors) {
        int headerArea = (int) VhdxFields.roundUp(64 + 32L * descriptors.size(), 4096);
        int dataCount = (int) descriptors.stream().filter(d -> d.data() != null).count();
        int length = headerArea + 4096 * dataCount;
        ByteBuffer e = VhdxFields.le(length);
        e.putInt(0, VhdxFields.LOG_ENTRY_SIGNATURE);
        e.putInt(8, length);
        e.putInt(12, (int) tail);
        e.putLong(16, sequence);
        e.putInt(24, descriptors.size());
        VhdxFields.putGuid(e, 32, guid);
        e.putLong(48, fileSize);
        e.putLong(56, fileSize);
        int sector = headerArea;
        for (int i = 0; i < descriptors.size(); i++) {
            Descriptor d = descriptors.get(i);
            int at = 64 + 32 * i;
            e.putLong(at + 16, d.fileOffset());
            e.putLong(at + 24, sequence);
            if (d.data() == null) {
                e.putInt(at, VhdxFields.ZERO_DESCRIPTOR_SIGNATURE);
                e.putLong(at + 8, d.zeroLength());
            } else {
                ByteBuffer data = VhdxFields.le(d.data());
                e.putInt(at, VhdxFields.DATA_DESCRIPTOR_SIGNATURE);
                e.putInt(at + 4, data.getInt(4092));
                e.putLong(at + 8, data.getLong(0));
                e.putInt(sector, VhdxFields.DATA_SECTOR_SIGNATURE);
                e.putInt(sector + 4, (int) (sequence >>> 32));
                e.put(sector + 8, d.data(), 8, 4084);
                e.putInt(sector + 4092, (int) sequence);
                sector += 4096;
            }
        }
        e.putInt(4, VhdxFields.crc(e, 0, length, 4));
        return e;
    }

    /** An imago image of 4 MiB, 1 MiB blocks: its BAT page with block 0 fully present at the file's end. */
    private static long[] imagoImage(Path img) throws IOException {
        Imago.create(img, "vhdx", imago.api.CreateOptions.builder().size(4 << 20).option("block_size", "1M").build());
        long end = Files.size(img);
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.truncate(end);
            ch.write(ByteBuffer.wrap(new byte[] {0}), end + (1 << 20) - 1);
        }
        return new long[] {end, end + (1 << 20)};
    }

    private static byte[] batPage(long blockOffset) {
        ByteBuffer p = VhdxFields.le(4096);
        p.putLong(0, VhdxBat.entry(VhdxFields.FULLY_PRESENT, blockOffset));
        for (int i = 1; i < 4; i++) {
            p.putLong(8 * i, VhdxFields.ZERO);
        }
        return p.array();
    }

    private static byte[] filled(int value) {
        byte[] b = new byte[4096];
        Arrays.fill(b, (byte) value);
        return b;
    }

    @Test
    void aSequenceIsReplayedFromItsTailInOrder(@TempDir Path dir) throws IOException {
        Path img = dir.resolve("s.vhdx");
        long[] sizes = imagoImage(img);
        long block = sizes[0];
        UUID guid = UUID.randomUUID();
        // entry 7 at 0: the BAT page; entry 8 at 8 KiB (tail 0): data into the block and zeroes over part of it;
        // entry 9 at 32 KiB: another GUID; entry 10 at 48 KiB: a bad checksum
        writeAt(img, LOG, entry(0, 7, guid, sizes[1], List.of(new Descriptor(BAT, batPage(block), 0))));
        writeAt(img, LOG + 8192, entry(0, 8, guid, sizes[1], List.of(new Descriptor(block, filled(0x77), 0),
                new Descriptor(block + 4096, filled(0x78), 0), new Descriptor(block, null, 4096))));
        writeAt(img, LOG + 32768, entry(0, 9, UUID.randomUUID(), sizes[1],
                List.of(new Descriptor(block + 8192, filled(0x79), 0))));
        ByteBuffer bad = entry(0, 10, guid, sizes[1], List.of(new Descriptor(block + 12288, filled(0x7a), 0)));
        bad.put(5000, (byte) 1);
        writeAt(img, LOG + 49152, bad);
        setLogGuid(img, guid);
        try (Image image = Imago.opener().path(img).writable(true).open()) {
            byte[] all = QemuReads.readAll(image);
            byte[] expected = new byte[4 << 20];
            Arrays.fill(expected, 4096, 8192, (byte) 0x78);
            assertArrayEquals(expected, all);
        }
        assertEquals(0, Qemu.check(img, "vhdx").status());
    }

    @Test
    void aTailNamingOnlyTheLastEntryReplaysOnlyThatOne(@TempDir Path dir) throws IOException {
        Path img = dir.resolve("t.vhdx");
        long[] sizes = imagoImage(img);
        long block = sizes[0];
        UUID guid = UUID.randomUUID();
        writeAt(img, LOG, entry(0, 7, guid, sizes[1], List.of(new Descriptor(BAT, batPage(block), 0))));
        writeAt(img, LOG + 8192, entry(8192, 8, guid, sizes[1], List.of(new Descriptor(block, filled(0x77), 0))));
        setLogGuid(img, guid);
        try (Image image = Imago.opener().path(img).writable(true).open()) {
            // the BAT page of entry 7 is not in the active sequence: block 0 still reads as zero
            assertArrayEquals(new byte[4 << 20], QemuReads.readAll(image));
        }
        assertEquals(0x77, readAt(img, block, 1).get(0), "entry 8 was applied");
    }
}
