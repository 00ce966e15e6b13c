package imago.vhdx.internal;

import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * A storage in memory that loses power: it keeps the bytes every request sees and the bytes the last
 * {@link #sync()} made durable, and after {@code failAfter} writes, resizes and syncs every request fails, as the
 * machine stopped. {@link #durable(Random)} is what a restart finds: the synced bytes, and each write made since
 * the last sync kept or lost at random (the disk may have written any of them).
 */
final class PowerLossStorage implements Storage {
    private final String name;
    private byte[] current;
    private byte[] durable;
    private long ops;
    /** Writes and resizes since the last sync: {offset, bytes} or {-1 - newSize, null}. */
    private final List<Object[]> unsynced = new ArrayList<>();
    private final long failAfter;

    PowerLossStorage(String name, byte[] initial, long failAfter) {
        this.name = name;
        this.current = initial.clone();
        this.durable = initial.clone();
        this.failAfter = failAfter;
    }

    /**
     * What survives the power loss: the content at the last sync with each later write or resize applied or not,
     * as {@code random} decides (all of them with {@code null}).
     */
    byte[] durable(Random random) {
        byte[] out = durable.clone();
        for (Object[] op : unsynced) {
            if (random != null && random.nextBoolean()) {
                continue;
            }
            long at = (Long) op[0];
            if (op[1] == null) {
                out = Arrays.copyOf(out, (int) (-1 - at));
            } else {
                byte[] b = (byte[]) op[1];
                if (at + b.length > out.length) {
                    out = Arrays.copyOf(out, (int) (at + b.length));
                }
                System.arraycopy(b, 0, out, (int) at, b.length);
            }
        }
        return out;
    }

    /** Whether the power was lost. */
    boolean lost() {
        return ops >= failAfter;
    }

    private void step() throws IOException {
        if (ops++ >= failAfter) {
            throw new IOException(name + ": power lost");
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public StorageLocation location() {
        return StorageLocation.memory(name);
    }

    @Override
    public long size() {
        return current.length;
    }

    @Override
    public boolean readOnly() {
        return false;
    }

    @Override
    public void read(ByteBuffer dst, long offset) {
        int n = (int) Math.max(0, Math.min(dst.remaining(), current.length - offset));
        dst.put(current, (int) offset, n);
        while (dst.hasRemaining()) {
            dst.put((byte) 0);
        }
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        step();
        long end = offset + src.remaining();
        if (end > current.length) {
            current = Arrays.copyOf(current, (int) end);
        }
        byte[] b = new byte[src.remaining()];
        src.get(b);
        System.arraycopy(b, 0, current, (int) offset, b.length);
        unsynced.add(new Object[] {offset, b});
    }

    @Override
    public void flush() {
    }

    @Override
    public void sync() throws IOException {
        step();
        durable = current.clone();
        unsynced.clear();
    }

    @Override
    public void resize(long size, Preallocation preallocation) throws IOException {
        step();
        current = Arrays.copyOf(current, (int) size);
        unsynced.add(new Object[] {-1 - size, null});
    }

    @Override
    public void close() {
    }
}
