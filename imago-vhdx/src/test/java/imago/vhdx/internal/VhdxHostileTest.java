package imago.vhdx.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import imago.testkit.HostileImages;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.UUID;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Hostile and damaged images built by the tests: each is refused with one specific exception that names the file
 * and the offset of the field at fault, in bounded time and memory.
 */
class VhdxHostileTest {
    private static final int MIB = 1 << 20;
    private static final int BAT = 2 * MIB;
    private static final int META = 3 * MIB;
    private static final byte[] VALID = valid();

    /** A 4 MiB dynamic disk (1 MiB blocks) whose block 1 imago wrote: 9 MiB of file. */
    private static byte[] valid() {
        String name = "hostile-base";
        try (MemoryStorage s = MemoryStorage.create(name)) {
            VhdxCreate.create(s, VhdxCreate.plan(4 * MIB, MIB, MIB, false, true), UUID::randomUUID, 1);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        try (Image image = Imago.opener().location(StorageLocation.memory(name)).format("vhdx").writable(true)
                .open()) {
            byte[] data = new byte[MIB];
            Arrays.fill(data, (byte) 0x5a);
            image.write(ByteBuffer.wrap(data), MIB);
            try (MemoryStorage s = MemoryStorage.open(name, false)) {
                byte[] all = new byte[(int) s.size()];
                s.read(ByteBuffer.wrap(all), 0);
                return all;
            }
        } catch (IOException e) {
            throw new AssertionError(e);
        } finally {
            MemoryStorage.delete(name);
        }
    }

    /** The offset of the current header of {@link #VALID} (the one with the higher sequence number). */
    static long current() {
        ByteBuffer b = VhdxFields.le(VALID);
        return b.getLong(0x10000 + 8) > b.getLong(0x20000 + 8) ? 0x10000 : 0x20000;
    }

    static byte[] patched(Consumer<ByteBuffer> patch) {
        byte[] bytes = VALID.clone();
        patch.accept(VhdxFields.le(bytes));
        return bytes;
    }

    /** Changes both headers and sets their checksums. */
    static Consumer<ByteBuffer> headers(Consumer<ByteBuffer> change) {
        return b -> {
            for (long at : VhdxFields.HEADER_OFFSETS) {
                ByteBuffer h = b.slice((int) at, VhdxFields.HEADER_LENGTH).order(b.order());
                change.accept(h);
                h.putInt(4, VhdxFields.crc(h, 0, VhdxFields.HEADER_LENGTH, 4));
            }
        };
    }

    /** Changes both region tables and sets their checksums. */
    static Consumer<ByteBuffer> regions(Consumer<ByteBuffer> change) {
        return b -> {
            for (long at : VhdxFields.REGION_TABLE_OFFSETS) {
                ByteBuffer r = b.slice((int) at, VhdxFields.REGION_TABLE_LENGTH).order(b.order());
                change.accept(r);
                r.putInt(4, VhdxFields.crc(r, 0, VhdxFields.REGION_TABLE_LENGTH, 4));
            }
        };
    }

    /** Opens {@code bytes} as vhdx (writable or not), reads it all, and returns what it threw. */
    static <T extends ImageException> T refused(Class<T> type, byte[] bytes, boolean writable) {
        return HostileImages.refused("vhdx", type, bytes, writable);
    }

    static void refusedAt(Class<? extends ImageException> type, byte[] bytes, long offset, String words) {
        HostileImages.refusedAt("vhdx", type, bytes, offset, words);
    }

    @Test
    void theBaseImageIsValid() throws IOException {
        byte[] expected = new byte[4 * MIB];
        Arrays.fill(expected, MIB, 2 * MIB, (byte) 0x5a);
        assertArrayEquals(expected, HostileImages.accepted("vhdx", VALID, false));
    }

    @Test
    void badHeaderChecksums() {
        byte[] one = patched(b -> b.put(0x10000 + 100, (byte) 1));
        try {
            HostileImages.accepted("vhdx", one, false); // the other header serves
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        refusedAt(CorruptImageException.class, patched(b -> {
            b.put(0x10000 + 100, (byte) 1);
            b.put(0x20000 + 100, (byte) 1);
        }), 0x10000, "No valid VHDX header");
        refusedAt(CorruptImageException.class, patched(headers(h -> h.putShort(66, (short) 2))), current() + 66,
                "version");
    }

    @Test
    void badRegionTables() throws IOException {
        refusedAt(CorruptImageException.class, patched(b -> {
            b.put(0x30000 + 100, (byte) 1);
            b.put(0x40000 + 100, (byte) 1);
        }), 0x30004, "checksum");
        refusedAt(CorruptImageException.class, patched(regions(r -> r.putInt(8, 5000))), 0x30008, "entry count");
        // the BAT region over the metadata region, over the log, not aligned, far past the end of the file
        refusedAt(CorruptImageException.class, patched(regions(r -> r.putLong(16 + 16, META))), 0x30000,
                "overlaps");
        refusedAt(CorruptImageException.class, patched(regions(r -> r.putLong(16 + 16, MIB))), 0x30000, "overlaps");
        refusedAt(CorruptImageException.class, patched(regions(r -> r.putLong(16 + 16, BAT + 4096))), 0x30000,
                "aligned");
        // a BAT past the end of the file reads as zeroes, as in QEMU (every block absent), but is not written
        byte[] farBat = patched(regions(r -> r.putLong(16 + 16, 1L << 40)));
        assertArrayEquals(new byte[4 * MIB], HostileImages.accepted("vhdx", farBat, false));
        assertTrue(HostileImages.refused("vhdx", CorruptImageException.class, farBat, true).getMessage()
                .contains("not inside the file"));
        // metadata past the end of the file: zeroes read-only, as in QEMU (no table there), refused for writing
        byte[] farMeta = patched(regions(r -> r.putLong(64, 1L << 40)));
        assertTrue(HostileImages.refused("vhdx", CorruptImageException.class, farMeta, false).getMessage()
                .contains("metadata table signature"));
        assertTrue(HostileImages.refused("vhdx", CorruptImageException.class, farMeta, true).getMessage()
                .contains("not inside the file"));
        refusedAt(CorruptImageException.class, patched(regions(r -> r.putInt(8, 1))), 0x30000, "lacks the metadata");
    }

    @ParameterizedTest(name = "block size {0}")
    @ValueSource(ints = {0, 512, 3 << 20, 512 << 20, -1})
    void absurdBlockSizes(int blockSize) {
        refusedAt(CorruptImageException.class, patched(b -> b.putInt(META + 65536, blockSize)), META + 65536,
                "block size");
    }

    @Test
    void absurdSizesAndTables() {
        refusedAt(ImageLimitException.class, patched(b -> b.putLong(META + 65536 + 8, 1L << 62)), META + 65536 + 8,
                "64 TiB");
        // 64 TiB of 1 MiB blocks need a 512 MiB BAT: its region of 1 MiB is too small
        refusedAt(CorruptImageException.class, patched(b -> b.putLong(META + 65536 + 8, 64L << 40)), BAT,
                "too small");
        refusedAt(CorruptImageException.class, patched(b -> b.putShort(META + 10, (short) 60000)), META + 10,
                "entry count");
        refusedAt(CorruptImageException.class, patched(b -> b.putInt(META + 32 + 16, 2 * MIB)), META + 32 + 16,
                "not inside the metadata region");
        refusedAt(CorruptImageException.class, patched(b -> b.putInt(META + 65536 + 32, 1000)), META + 65536 + 32,
                "logical sector size");
        refusedAt(CorruptImageException.class, patched(b -> b.putLong(META, 0)), META, "signature");
    }

    @Test
    void batEntriesPastTheEndOrOverMetadata() {
        refusedAt(CorruptImageException.class, patched(b -> b.putLong(BAT, VhdxBat.entry(6, 1L << 40))), BAT,
                "points after end of file");
        refusedAt(CorruptImageException.class, patched(b -> b.putLong(BAT, VhdxBat.entry(6, META))), BAT,
                "over the headers");
        refusedAt(CorruptImageException.class, patched(b -> b.putLong(BAT, 4)), BAT, "invalid payload block state");
        // block 0 at block 1's place: readable, but refused for writing
        byte[] twice = patched(b -> b.putLong(BAT, b.getLong(BAT + 8)));
        ImageException e = refused(CorruptImageException.class, twice, true);
        assertTrue(e.getMessage().contains("overlapping blocks"), e::getMessage);
        refusedAt(CorruptImageException.class, patched(b -> b.putLong(BAT, VhdxBat.entry(7, 8L * MIB))), BAT,
                "invalid payload block state");
    }

    @Test
    void logsPastTheEndOrOutOfLine() {
        UUID guid = UUID.randomUUID();
        refusedAt(CorruptImageException.class, patched(headers(h -> {
            VhdxFields.putGuid(h, 48, guid);
            h.putLong(72, 1L << 40);
        })), 1L << 40, "not inside the file");
        refusedAt(CorruptImageException.class, patched(headers(h -> {
            VhdxFields.putGuid(h, 48, guid);
            h.putInt(68, 4096);
        })), current() + 68, "1 MiB aligned");
        refusedAt(ImageLimitException.class, patched(headers(h -> {
            VhdxFields.putGuid(h, 48, guid);
            h.putInt(68, 512 << 20);
            h.putLong(72, 1L << 30);
        })), current() + 68, "replays at most");
    }

    /** A log entry whose zero descriptor reaches past what it says the file was is not replayed (nor applied). */
    @Test
    void logEntriesWritingPastTheFileAreInvalid() throws IOException {
        UUID guid = UUID.randomUUID();
        byte[] bytes = patched(headers(h -> VhdxFields.putGuid(h, 48, guid)));
        ByteBuffer entry = VhdxLogTest.entry(0, 1, guid, VALID.length, java.util.List.of(
                new VhdxLogTest.Descriptor(VALID.length, null, 1L << 40)));
        VhdxFields.le(bytes).put(MIB, entry, 0, entry.capacity());
        HostileImages.accepted("vhdx", bytes, false); // no valid entry: nothing to replay, the open goes on
    }

    /** A log full of entry headers claiming the whole log, none valid: the search gives up instead of hashing on. */
    @Test
    void aLogOfHugeBogusEntriesIsNotSearchedForever() {
        UUID guid = UUID.randomUUID();
        byte[] bytes = patched(headers(h -> VhdxFields.putGuid(h, 48, guid)));
        ByteBuffer b = VhdxFields.le(bytes);
        for (int p = 0; p < MIB; p += 4096) {
            b.putInt(MIB + p, VhdxFields.LOG_ENTRY_SIGNATURE);
            b.putInt(MIB + p + 8, MIB);
            b.putLong(MIB + p + 16, 1 + p);
            VhdxFields.putGuid(b, MIB + p + 32, guid);
        }
        ImageException e = refused(ImageLimitException.class, bytes, true);
        assertTrue(e.getMessage().contains("checksum"), e::getMessage);
    }

    /** Nor is one saying the file reached far past its end (replay would grow it by terabytes). */
    @Test
    void logEntriesGrowingTheFileByTerabytesAreInvalid() throws IOException {
        UUID guid = UUID.randomUUID();
        byte[] bytes = patched(headers(h -> VhdxFields.putGuid(h, 48, guid)));
        long far = VALID.length + (1L << 40);
        ByteBuffer entry = VhdxLogTest.entry(0, 1, guid, far, java.util.List.of(
                new VhdxLogTest.Descriptor(VALID.length, null, far - VALID.length)));
        VhdxFields.le(bytes).put(MIB, entry, 0, entry.capacity());
        String name = "hostile-log-far";
        MemoryStorage.of(name, bytes).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(name)).format("vhdx").writable(true)
                .open()) {
            QemuReads.readAll(image);
        }
        try (MemoryStorage s = MemoryStorage.open(name, false)) {
            assertTrue(s.size() == VALID.length, "the file did not grow: " + s.size());
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @ParameterizedTest(name = "truncated to {0}")
    @ValueSource(ints = {0, 7, 4096, 0x10000 + 100, 0x30000 + 1000, MIB, BAT + 100, META + 4096, META + 65536 + 20,
        8 * MIB + 4096})
    void truncatedFiles(int length) {
        refused(ImageException.class, Arrays.copyOf(VALID, length), false);
    }
}
