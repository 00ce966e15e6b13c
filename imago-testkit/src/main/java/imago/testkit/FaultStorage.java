package imago.testkit;

import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A growable in-memory disk that fails and loses power on demand (Lucene's CrankyCodec idea, for storage).
 *
 * <p>Failures: after {@link #failAfter(int) failAfter(n)} the (n+1)-th write from then on, and every one after it,
 * throws an {@link IOException} until {@link #heal()}.
 *
 * <p>Power loss: the disk counts {@link #points() points} — every write and every sync (power may fail just
 * before a sync, after the last write before it). When point {@link #crashAt(int, int) crashAt} is reached, it
 * builds the files a power loss there could leave: the synced bytes plus a random subset of the writes made since
 * the last sync, a quarter of the multi-sector ones torn (only some of their 512-byte sectors reached the disk: a
 * sector is the unit a disk writes atomically). The disk itself keeps working, so a workload runs to its end and
 * the test then checks each {@link #crashFiles() crashed file}. Variant {@code v} of crash point {@code p} is drawn
 * from {@code new Random(p * 31 + v)}, so a crash file is a function of the workload and the point alone.
 *
 * <p>The files of one image (a vmdk descriptor and its extents) lose power together once they
 * {@link #sharePower share a power supply}.
 *
 * <p>It outlives the handles opened on it, as a file does: {@link #close()} does nothing. Register one with
 * {@link TestStorages} to open images on it through {@code imago.probe.Imago}.
 */
public class FaultStorage implements Storage {
    /** How many crashed files had a torn write, over all disks. */
    private static final AtomicInteger TORN = new AtomicInteger();

    private final StorageLocation location;
    private byte[] bytes = new byte[0];
    private long length;
    private int writesLeft = Integer.MAX_VALUE;
    private byte[] durable = new byte[0];
    /** Writes (and resizes, as an empty write at the new size) since the last sync, in order. */
    private final List<Pending> unsynced = new ArrayList<>();
    /** The power supply this disk shares with the other files of its image (its own until {@link #sharePower}). */
    private volatile Power power = new Power();
    private final List<byte[]> crashed = new ArrayList<>();

    /**
     * The points counted, and the crash point, for the disks on one power supply; also their one lock, so that a
     * power loss seen by one disk snapshots every disk at the same moment.
     */
    private static final class Power {
        /** The disks on it; empty for a disk's own supply, which only it uses. */
        private final List<FaultStorage> disks = new ArrayList<>();
        private int points;
        private int crashAt = Integer.MAX_VALUE;
        private int variantCount = 1;
    }

    /**
     * One write not yet synced ({@code extending} if it made the disk longer), or a resize to {@code offset} bytes.
     */
    private record Pending(long offset, byte[] data, boolean resize, boolean extending) {
    }

    /** An empty disk at {@code location} (which only names it and resolves names stored in images). */
    public FaultStorage(StorageLocation location) {
        this.location = location;
    }

    /** An empty disk named {@code memory:name}. */
    public FaultStorage(String name) {
        this(StorageLocation.memory(name));
    }

    /** A disk at {@code location} holding {@code content}, synced. */
    public FaultStorage(StorageLocation location, byte[] content) {
        this(location);
        bytes = content.clone();
        length = content.length;
        durable = content.clone();
    }

    /** A disk at {@code location} holding {@code content}, synced. */
    public static FaultStorage of(StorageLocation location, byte[] content) {
        return new FaultStorage(location, content);
    }

    /** How many crashed files (over all disks) had a torn write. */
    public static int tornFiles() {
        return TORN.get();
    }

    /** From now on, the write after the next {@code writes} ones fails, and every write after that. */
    public void failAfter(int writes) {
        synchronized (lock()) {
            writesLeft = writes;
        }
    }

    /** Writes work again. */
    public void heal() {
        synchronized (lock()) {
            writesLeft = Integer.MAX_VALUE;
        }
    }

    /** Whether a write has failed since {@link #failAfter} (and no {@link #heal} since). */
    public boolean failing() {
        synchronized (lock()) {
            return writesLeft < 0;
        }
    }

    /**
     * Loses power at point {@code point} counted from now (0 is the next write or sync), leaving {@code variants}
     * possible files; a negative point or {@link Integer#MAX_VALUE} only counts.
     */
    public void crashAt(int point, int variants) {
        synchronized (lock()) {
            power.crashAt = point;
            power.variantCount = variants;
            power.points = 0;
        }
    }

    /** Writes and syncs since {@link #crashAt} (or since creation), on every disk sharing this one's power. */
    public int points() {
        synchronized (lock()) {
            return power.points;
        }
    }

    /**
     * Puts {@code disks} (the files of one image, the first its main file) on one power supply: from now on their
     * writes and syncs are counted together, and a power loss at a point {@link #crashAt} set on any of them leaves
     * {@link #crashFiles() crash files} on each, made at the same moment (each drops and tears its own unsynced
     * writes, as the files of one disk would). Call it before the disks are used, from one thread.
     *
     * @throws IllegalArgumentException if no disk is given
     */
    public static void sharePower(List<FaultStorage> disks) {
        if (disks.isEmpty()) {
            throw new IllegalArgumentException("no disk");
        }
        Power shared = new Power();
        shared.disks.addAll(disks);
        for (FaultStorage d : disks) {
            d.power = shared;
        }
    }

    /** The one lock of the disks on this disk's power supply. */
    private Object lock() {
        return power;
    }

    /** The first file the power loss left, once the crash point has passed. */
    public Optional<byte[]> crashed() {
        synchronized (lock()) {
            return crashed.isEmpty() ? Optional.empty() : Optional.of(crashed.getFirst());
        }
    }

    /** Every file the power loss could have left (empty until the crash point has passed). */
    public List<byte[]> crashFiles() {
        synchronized (lock()) {
            return List.copyOf(crashed);
        }
    }

    /** The current content (what a reader sees, synced or not). */
    public byte[] content() {
        synchronized (lock()) {
            return Arrays.copyOf(bytes, (int) length);
        }
    }

    @Override
    public String name() {
        return location.toString();
    }

    @Override
    public StorageLocation location() {
        return location;
    }

    /** Names stored in an image resolve to disks of the same scheme, by name. */
    @Override
    public Optional<StorageLocation> resolve(String storedName) {
        return Optional.of(new StorageLocation(location.scheme(), storedName));
    }

    @Override
    public long size() {
        synchronized (lock()) {
            return length;
        }
    }

    @Override
    public boolean readOnly() {
        return false;
    }

    @Override
    public void read(ByteBuffer dst, long offset) {
        synchronized (lock()) {
            int n = (int) Math.max(0, Math.min(dst.remaining(), length - offset));
            dst.put(bytes, (int) Math.min(offset, length), n);
            while (dst.hasRemaining()) {
                dst.put((byte) 0);
            }
        }
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        synchronized (lock()) {
            passPoint();
            byte[] data = new byte[src.remaining()];
            src.duplicate().get(data);
            unsynced.add(new Pending(offset, data, false, offset + data.length > length));
            if (--writesLeft < 0) {
                throw new IOException("injected write failure at offset " + offset);
            }
            long end = offset + src.remaining();
            if (end > bytes.length) {
                bytes = Arrays.copyOf(bytes, (int) Math.max(end, bytes.length * 2L));
            }
            src.get(bytes, (int) offset, src.remaining());
            length = Math.max(length, end);
        }
    }

    @Override
    public void flush() {
    }

    @Override
    public void sync() {
        synchronized (lock()) {
            passPoint();
            durable = apply(durable, unsynced, null);
            unsynced.clear();
        }
    }

    /** Grows or shrinks; a shrunk tail is gone, and reads as zeroes if the disk grows again. */
    @Override
    public void resize(long size, Preallocation preallocation) {
        synchronized (lock()) {
            if (size < length) {
                Arrays.fill(bytes, (int) size, (int) Math.min(length, bytes.length), (byte) 0);
            }
            bytes = Arrays.copyOf(bytes, (int) Math.max(size, bytes.length));
            length = size;
            unsynced.add(new Pending(size, new byte[0], true, false));
        }
    }

    /** Does nothing: the disk outlives its handles. */
    @Override
    public void close() {
    }

    @Override
    public String toString() {
        return "FaultStorage[" + name() + ", " + length + " bytes]";
    }

    /** Counts a point, and at the crash point builds the power-loss files of every disk on this power supply. */
    private void passPoint() {
        Power p = power;
        if (p.points++ == p.crashAt) {
            List<FaultStorage> disks = p.disks.isEmpty() ? List.of(this) : p.disks;
            for (int d = 0; d < disks.size(); d++) {
                FaultStorage disk = disks.get(d);
                for (int v = 0; v < p.variantCount; v++) {
                    // the main disk's draw is as it was when disks lost power alone; the others' differ from it
                    long seed = p.crashAt * 31L + v + d * 0x9E3779B97F4A7C15L;
                    byte[] out = apply(disk.durable, disk.unsynced, new Random(seed));
                    disk.crashed.add(out == disk.durable ? disk.durable.clone() : out);
                }
            }
        }
    }

    /**
     * Applies {@code writes} to {@code base}: all of them in place ({@code r} null), or to a copy those that
     * {@code r} picks, a quarter of those that span sectors torn.
     */
    private static byte[] apply(byte[] base, List<Pending> writes, Random r) {
        byte[] out = base;
        boolean copied = false;
        boolean torn = false;
        for (Pending w : writes) {
            if (r != null && !r.nextBoolean()) {
                continue;
            }
            long off = w.offset();
            byte[] data = w.data();
            if (w.resize()) {
                out = Arrays.copyOf(out, (int) off);
                copied = true;
                continue;
            }
            if (r != null && data.length > 0 && (off & ~511L) != ((off + data.length - 1) & ~511L)
                    && r.nextInt(4) == 0) {
                // torn: each sector the write touches made it or not
                int end = (int) (w.extending() ? Math.max(out.length, off + data.length) : out.length);
                byte[] now = Arrays.copyOf(out, end);
                for (long sector = off & ~511L; sector < off + data.length; sector += 512) {
                    long from = Math.max(sector, off);
                    long to = Math.min(Math.min(sector + 512, off + data.length), end);
                    if (r.nextBoolean() && from < to) {
                        System.arraycopy(data, (int) (from - off), now, (int) from, (int) (to - from));
                    }
                }
                out = now;
                copied = true;
                torn = true;
                continue;
            }
            if (off + data.length > out.length && w.extending()) {
                out = Arrays.copyOf(out, (int) (off + data.length));
                copied = true;
            } else if (!copied && r != null) {
                out = out.clone();
                copied = true;
            }
            // a write that did not make the disk longer lands only inside it: if a lost resize left the disk
            // shorter, its bytes past the end are gone with that resize
            int n = (int) Math.max(0, Math.min(data.length, out.length - off));
            if (n > 0) {
                System.arraycopy(data, 0, out, (int) off, n);
            }
        }
        if (torn) {
            TORN.incrementAndGet();
        }
        return out;
    }
}
