package imago.testkit;

import imago.api.StorageLocation;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The disks behind the {@code testkit} storage scheme: {@link FaultStorage}s by name, each opened through an
 * {@link AssertingStorage} handle, so that tests open images on them with {@code imago.probe.Imago} exactly as
 * users open files — and then ask what the driver did with its storage.
 */
public final class TestStorages {
    /** The storage scheme {@link TestStorageProvider} serves. */
    public static final String SCHEME = "testkit";
    /** No request may reach this offset: a driver computing a wild offset is caught before memory runs out. */
    public static final long LIMIT = 1L << 30;

    private static final Map<String, FaultStorage> DISKS = new ConcurrentHashMap<>();
    private static final Map<String, List<AssertingStorage>> HANDLES = new ConcurrentHashMap<>();

    private TestStorages() {
    }

    /** The location of the disk named {@code name}. */
    public static StorageLocation location(String name) {
        return new StorageLocation(SCHEME, name);
    }

    /** Puts {@code disk} under {@code name}, replacing any disk there, and returns its location. */
    public static StorageLocation put(String name, FaultStorage disk) {
        DISKS.put(name, disk);
        HANDLES.remove(name);
        return location(name);
    }

    /** A new disk under {@code name} holding {@code content} (synced), replacing any disk there. */
    public static FaultStorage put(String name, byte[] content) {
        FaultStorage disk = FaultStorage.of(location(name), content);
        put(name, disk);
        return disk;
    }

    /** The disk under {@code name}, or null. */
    public static FaultStorage disk(String name) {
        return DISKS.get(name);
    }

    /** Forgets the disk under {@code name}. */
    public static void remove(String name) {
        DISKS.remove(name);
        HANDLES.remove(name);
    }

    /** Opens a handle on the disk under {@code name}, creating the disk if {@code create}; null if there is none. */
    static AssertingStorage open(String name, boolean readOnly, boolean create) {
        FaultStorage disk = create ? DISKS.compute(name, (n, old) -> new FaultStorage(location(n))) : DISKS.get(name);
        if (disk == null) {
            return null;
        }
        AssertingStorage handle = new AssertingStorage(disk, readOnly, LIMIT);
        HANDLES.computeIfAbsent(name, n -> new ArrayList<>()).add(handle);
        return handle;
    }

    /**
     * Asserts that every handle opened on the disk under {@code name} was closed and broke no rule.
     *
     * @throws AssertionError naming the first violation or the handles still open
     */
    public static void assertClean(String name) {
        List<AssertingStorage> handles = HANDLES.getOrDefault(name, List.of());
        for (AssertingStorage h : List.copyOf(handles)) {
            if (!h.violations().isEmpty()) {
                throw new AssertionError("storage misused: " + h.violations());
            }
            if (!h.closed()) {
                throw new AssertionError(h + " was not closed when its image was");
            }
        }
    }
}
