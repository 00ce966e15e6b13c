package imago.vmdk.internal;

import imago.api.CorruptImageException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;

/**
 * The grain directory and grain tables of a sparse extent ({@code KDMV} or {@code COWD}): 32-bit little-endian
 * entries counting sectors. The directory (and its redundant copy) is read whole when the extent opens; grain
 * tables are read on first use and kept, and a write changes them in memory ({@link #set}) until {@link #flush}
 * writes them back in crash-safe order: the caller has synced the grains they point at; then the tables (and their
 * redundant copies) are written, then, for tables that are new, a sync and the directory entries that point at them.
 *
 * <p>Entries are read without a lock; loading a table and changing entries take {@link #lock}.
 */
final class VmdkGrainTables {
    /** Tables kept in memory before clean ones are dropped: 8192 tables of 512 entries map 256 GiB of 64 KiB grains. */
    private static final int MAX_CACHED = 8192;

    private final Storage storage;
    private final String resource;
    private final int gtesPerGt;
    private final int gtBytes;
    private final long gdOffset;
    private final long rgdOffset;
    private final AtomicIntegerArray gd;
    private final AtomicIntegerArray rgd;
    private final LongSupplier fileSize;
    private final Map<Integer, AtomicIntegerArray> tables = new ConcurrentHashMap<>();
    private final TreeSet<Integer> dirty = new TreeSet<>();
    /** Tables that have no place in the file yet (their directory entry is 0). */
    private final TreeSet<Integer> created = new TreeSet<>();
    private final ReentrantLock lock = new ReentrantLock();

    private VmdkGrainTables(Storage storage, String resource, int gtesPerGt, long gdOffset, long rgdOffset,
            AtomicIntegerArray gd, AtomicIntegerArray rgd, LongSupplier fileSize) {
        this.storage = storage;
        this.resource = resource;
        this.gtesPerGt = gtesPerGt;
        this.gtBytes = gtesPerGt * 4;
        this.gdOffset = gdOffset;
        this.rgdOffset = rgdOffset;
        this.gd = gd;
        this.rgd = rgd;
        this.fileSize = fileSize;
    }

    /**
     * Reads the directory of {@code entries} entries at byte {@code gdOffset} (and the redundant one at
     * {@code rgdOffset}, or none when negative), both already checked to lie inside the file unless not
     * {@code strict}: then (a check, as QEMU's) tables past the end of the file read as empty, and the two
     * directories need not agree.
     *
     * @throws CorruptImageException if an entry points a grain table outside the file, or the directories disagree
     * @throws IOException if the storage cannot be read
     */
    static VmdkGrainTables load(Storage storage, String resource, int gtesPerGt, int entries, long gdOffset,
            long rgdOffset, LongSupplier fileSize, boolean strict) throws IOException {
        int[] gd = readDirectory(storage, gdOffset, entries);
        int[] rgd = rgdOffset >= 0 ? readDirectory(storage, rgdOffset, entries) : null;
        VmdkGrainTables t = new VmdkGrainTables(storage, resource, gtesPerGt, gdOffset, rgdOffset,
                new AtomicIntegerArray(gd), rgd == null ? null : new AtomicIntegerArray(rgd), fileSize);
        for (int i = 0; i < entries && strict; i++) {
            t.checkTable(gdOffset, i, gd[i]);
            if (rgd != null) {
                t.checkTable(rgdOffset, i, rgd[i]);
                if ((gd[i] == 0) != (rgd[i] == 0)) {
                    throw new CorruptImageException(resource, rgdOffset + 4L * i, "grain directory entry " + i
                            + " and its redundant copy disagree about whether grain table " + i + " exists");
                }
            }
        }
        return t;
    }

    private static int[] readDirectory(Storage storage, long offset, int entries) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(entries * 4).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(buf, offset);
        int[] out = new int[entries];
        buf.flip().asIntBuffer().get(out);
        return out;
    }

    private void checkTable(long directory, int index, int sector) throws CorruptImageException {
        long s = Integer.toUnsignedLong(sector);
        if (s != 0 && s * VmdkDescriptor.SECTOR + gtBytes > fileSize.getAsLong()) {
            throw new CorruptImageException(resource, directory + 4L * index, "grain table " + index + " at sector "
                    + s + " lies past the end of the file (" + fileSize.getAsLong() + " bytes)");
        }
    }

    /** Entries per grain table. */
    int gtesPerGt() {
        return gtesPerGt;
    }

    /** Whether grain table {@code index} exists (its directory entry is not 0, or it was created by a write). */
    boolean hasTable(int index) {
        return gd.get(index) != 0 || tables.containsKey(index);
    }

    /** The number of directory entries. */
    int tableCount() {
        return gd.length();
    }

    /**
     * The entry of grain {@code grain} (unsigned): 0 when its table does not exist.
     *
     * @throws IOException if its table cannot be read
     */
    long entry(long grain) throws IOException {
        int index = (int) (grain / gtesPerGt);
        if (!hasTable(index)) {
            return 0;
        }
        return Integer.toUnsignedLong(table(index).get((int) (grain % gtesPerGt)));
    }

    /**
     * Where new grains go: {@code next} (a sector), or past every grain the tables name if that is further, as in a
     * file cut short (of {@code fileSize} bytes), whose grains may lie past its end. Reads every table once (tables not
     * cached are not kept).
     *
     * @throws IOException if a table cannot be read
     */
    long pastMappedGrains(long next, long fileSize, long grainSectors, boolean compressed) throws IOException {
        long highest = 0;
        for (int i = 0; i < gd.length(); i++) {
            if (hasTable(i)) {
                AtomicIntegerArray t = tables.get(i);
                t = t != null ? t : read(i);
                for (int j = 0; j < t.length(); j++) {
                    highest = Math.max(highest, Integer.toUnsignedLong(t.get(j)));
                }
            }
        }
        long fileSectors = (fileSize + VmdkDescriptor.SECTOR - 1) / VmdkDescriptor.SECTOR;
        if (highest <= 1 || compressed && highest < fileSectors) {
            return next; // none, or a compressed grain in the file: its marker says where it ends
        }
        // past the end a compressed grain's marker is gone: it takes up to two grains and the marker
        long end = highest + (compressed ? 2 * grainSectors + 1 : grainSectors);
        return Math.max(next, (end + grainSectors - 1) / grainSectors * grainSectors);
    }

    /** Where the entry of grain {@code grain} is in the file (for messages), or the directory entry's place. */
    long entryOffset(long grain) {
        int index = (int) (grain / gtesPerGt);
        long sector = Integer.toUnsignedLong(gd.get(index));
        return sector == 0 ? gdOffset + 4L * index : sector * VmdkDescriptor.SECTOR + 4 * (grain % gtesPerGt);
    }

    private AtomicIntegerArray table(int index) throws IOException {
        AtomicIntegerArray t = tables.get(index);
        if (t != null) {
            return t;
        }
        lock.lock();
        try {
            t = tables.get(index);
            if (t == null) {
                t = read(index);
                if (tables.size() >= MAX_CACHED) {
                    tables.keySet().removeIf(k -> !dirty.contains(k) && !created.contains(k));
                }
                tables.put(index, t);
            }
            return t;
        } finally {
            lock.unlock();
        }
    }

    private AtomicIntegerArray read(int index) throws IOException {
        long sector = Integer.toUnsignedLong(gd.get(index));
        ByteBuffer buf = ByteBuffer.allocate(gtBytes).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(buf, sector * VmdkDescriptor.SECTOR);
        int[] entries = new int[gtesPerGt];
        buf.flip().asIntBuffer().get(entries);
        return new AtomicIntegerArray(entries);
    }

    /**
     * Points grain {@code grain} at {@code value} (a sector, or 1 for a grain of zeroes) in memory; {@link #flush}
     * writes it. A missing table is created, empty.
     *
     * @throws IOException if the grain's table cannot be read
     */
    void set(long grain, int value) throws IOException {
        int index = (int) (grain / gtesPerGt);
        lock.lock();
        try {
            AtomicIntegerArray t;
            if (!hasTable(index)) {
                t = new AtomicIntegerArray(gtesPerGt);
                tables.put(index, t);
                created.add(index);
            } else {
                t = table(index);
            }
            t.set((int) (grain % gtesPerGt), value);
            dirty.add(index);
        } finally {
            lock.unlock();
        }
    }

    /** Whether tables changed since the last {@link #flush}. */
    boolean dirty() {
        lock.lock();
        try {
            return !dirty.isEmpty();
        } finally {
            lock.unlock();
        }
    }

    /** An I/O step run by {@link #flush}. */
    @FunctionalInterface
    interface IoAction {
        void run() throws IOException;
    }

    /** Hands out {@code bytes} of new, sector-aligned space at the end of the file. */
    @FunctionalInterface
    interface Allocator {
        long allocate(long bytes) throws IOException;
    }

    /**
     * Runs {@code syncGrains} (which makes the grains the tables point at durable), then writes changed tables (and
     * their redundant copies); new tables get space from {@code allocator}, are synced, and only then does the
     * directory point at them. Entries set meanwhile wait for the next flush.
     *
     * @throws IOException if a write fails; the tables stay dirty
     */
    void flush(Allocator allocator, IoAction syncGrains) throws IOException {
        lock.lock();
        try {
            if (dirty.isEmpty()) {
                return;
            }
            // under the lock, so that no entry set after this sync (for data not yet synced) is written
            syncGrains.run();
            int sectorBytes = (gtBytes + VmdkDescriptor.SECTOR - 1) / VmdkDescriptor.SECTOR * VmdkDescriptor.SECTOR;
            List<int[]> placed = new ArrayList<>(); // {index, primary sector, redundant sector}
            for (int index : created) {
                long primary = allocator.allocate(sectorBytes) / VmdkDescriptor.SECTOR;
                long redundant = rgd != null ? allocator.allocate(sectorBytes) / VmdkDescriptor.SECTOR : 0;
                if (primary > 0xFFFF_FFFFL || redundant > 0xFFFF_FFFFL) {
                    throw new CorruptImageException(resource, "the extent file has grown past the 2 TiB that 32-bit "
                            + "sector numbers reach");
                }
                placed.add(new int[] {index, (int) primary, (int) redundant});
            }
            for (int index : dirty) {
                ByteBuffer buf = ByteBuffer.allocate(gtBytes).order(ByteOrder.LITTLE_ENDIAN);
                AtomicIntegerArray t = tables.get(index);
                for (int i = 0; i < gtesPerGt; i++) {
                    buf.putInt(t.get(i));
                }
                int primary = gd.get(index);
                int redundant = rgd != null ? rgd.get(index) : 0;
                for (int[] p : placed) {
                    if (p[0] == index) {
                        primary = p[1];
                        redundant = p[2];
                    }
                }
                storage.write(buf.flip(), Integer.toUnsignedLong(primary) * VmdkDescriptor.SECTOR);
                if (rgd != null) {
                    storage.write(buf.flip(), Integer.toUnsignedLong(redundant) * VmdkDescriptor.SECTOR);
                }
            }
            if (!placed.isEmpty()) {
                storage.flush();
                storage.sync();
                for (int[] p : placed) {
                    writeDirectoryEntry(gdOffset, p[0], p[1]);
                    gd.set(p[0], p[1]);
                    if (rgd != null) {
                        writeDirectoryEntry(rgdOffset, p[0], p[2]);
                        rgd.set(p[0], p[2]);
                    }
                    created.remove(p[0]);
                }
            }
            dirty.clear();
        } finally {
            lock.unlock();
        }
    }

    private void writeDirectoryEntry(long directory, int index, int sector) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(sector).flip();
        storage.write(buf, directory + 4L * index);
    }
}
