package imago.testkit;

import imago.api.StorageLocation;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The disks behind the {@code testkit} storage scheme: {@link FaultStorage}s by name, each opened through an
 * {@link AssertingStorage} handle, so that tests open images on them with {@code imago.probe.Imago} exactly as
 * users open files — and then ask what the driver did with its storage.
 *
 * <p>An image may be several disks: its main disk and the files created with it (a vmdk descriptor's extent files),
 * which it names relative to itself and so finds next to it by name, through the open gate as in production. Once
 * {@link #adopt adopted}, they are the image's {@link #files files}: removed, checked, saved and restored with it.
 */
public final class TestStorages {
    /** The storage scheme {@link TestStorageProvider} serves. */
    public static final String SCHEME = "testkit";
    /** No request may reach this offset: a driver computing a wild offset is caught before memory runs out. */
    public static final long LIMIT = 1L << 30;

    private static final Map<String, FaultStorage> DISKS = new ConcurrentHashMap<>();
    private static final Map<String, List<AssertingStorage>> HANDLES = new ConcurrentHashMap<>();
    /** The disks created with an image, by the image's main disk. */
    private static final Map<String, List<String>> FILES = new ConcurrentHashMap<>();

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

    /** Forgets the disk under {@code name}, and the disks created with it. */
    public static void remove(String name) {
        for (String file : files(name)) {
            DISKS.remove(file);
            HANDLES.remove(file);
        }
        FILES.remove(name);
    }

    /** The names of the disks there are now. */
    static Set<String> names() {
        return Set.copyOf(DISKS.keySet());
    }

    /**
     * Records that the disks created since {@code before} was taken whose names start with {@code name} (a vmdk
     * names its extent files after the image) are files of the image on disk {@code name}.
     */
    static void adopt(String name, Set<String> before) {
        Set<String> created = new TreeSet<>(DISKS.keySet());
        created.removeAll(before);
        created.remove(name);
        created.removeIf(n -> !n.startsWith(name));
        if (!created.isEmpty()) {
            FILES.put(name, List.copyOf(created));
        }
    }

    /** The disks of the image on disk {@code name}: that disk first, then the files created with it. */
    public static List<String> files(String name) {
        List<String> out = new ArrayList<>();
        out.add(name);
        out.addAll(FILES.getOrDefault(name, List.of()));
        return out;
    }

    /** The content of every disk of the image on disk {@code name}, by disk name, the main disk first. */
    static SequencedMap<String, byte[]> contents(String name) {
        SequencedMap<String, byte[]> out = new LinkedHashMap<>();
        for (String file : files(name)) {
            FaultStorage disk = DISKS.get(file);
            if (disk == null) {
                throw new AssertionError("the image on " + name + " has no disk " + file);
            }
            out.put(file, disk.content());
        }
        return out;
    }

    /**
     * Puts a new disk holding each of {@code contents} (synced) under its name, replacing any disk there; returns
     * the disks in order, on one power supply ({@link FaultStorage#sharePower}).
     */
    static List<FaultStorage> restore(SequencedMap<String, byte[]> contents) {
        List<FaultStorage> disks = new ArrayList<>();
        contents.forEach((n, content) -> disks.add(put(n, content)));
        FaultStorage.sharePower(disks);
        return disks;
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
     * Asserts that every handle opened on the disk under {@code name}, and on the disks created with it, was closed
     * and broke no rule.
     *
     * @throws AssertionError naming the first violation or the handles still open
     */
    public static void assertClean(String name) {
        List<AssertingStorage> handles = new ArrayList<>();
        for (String file : files(name)) {
            handles.addAll(List.copyOf(HANDLES.getOrDefault(file, List.of())));
        }
        for (AssertingStorage h : handles) {
            if (!h.violations().isEmpty()) {
                throw new AssertionError("storage misused: " + h.violations());
            }
            if (!h.closed()) {
                throw new AssertionError(h + " was not closed when its image was");
            }
        }
    }
}
