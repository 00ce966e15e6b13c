package imago.cli.info;

import imago.api.ImageInfo;
import imago.api.SnapshotInfo;
import imago.cli.text.Json;
import imago.cli.text.Sizes;
import imago.probe.Imago;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code qemu-img info}'s output for one layer or a chain: the JSON object QEMU's {@code ImageInfo}
 * visitor builds, and the human dump of {@code bdrv_image_info_dump}.
 */
public final class InfoReport {

    private static final long NANOS = 1_000_000_000L;

    /** The snapshot table's date format, made when a table is shown: parsing a pattern is not free at start-up. */
    private static final class Dates {
        static final DateTimeFormatter DATE = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss", Locale.ROOT);
    }

    private InfoReport() {
    }

    /**
     * One layer as it is shown.
     *
     * @param displayName the file name as QEMU would show it (as given, or combined with the referrer's)
     * @param info what the library reports
     */
    public record Layer(String displayName, ImageInfo info) {
        /**
         * The backing file name combined with this layer's displayed name, as QEMU's
         * {@code path_combine} does: absolute names stay, relative ones get this layer's directory.
         */
        public java.util.Optional<String> fullBackingName() {
            return info.backingFilename().map(b -> combine(displayName, b));
        }
    }

    private static boolean reportsDirtyFlag(String format) {
        try {
            return Imago.describe(format).dirtyFlag();
        } catch (imago.api.UnknownFormatException e) {
            return true; // an image opened with a driver is never of an unknown format
        }
    }

    /** QEMU's {@code path_combine}: {@code name} relative to the directory part of {@code base}. */
    public static String combine(String base, String name) {
        if (name.startsWith("/")) {
            return name;
        }
        int slash = base.lastIndexOf('/');
        return slash < 0 ? name : base.substring(0, slash + 1) + name;
    }

    /** The layer as QEMU's JSON object, in QAPI field order (the JSON writer reorders like QDict). */
    public static Map<String, Object> toMap(Layer layer) {
        ImageInfo info = layer.info();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", layer.displayName());
        m.put("format", info.format());
        if (reportsDirtyFlag(info.format())) {
            // QEMU's drivers without get_info (bochs, cloop, dmg, parallels) make qemu-img print no dirty flag
            m.put("dirty-flag", info.dirty());
        }
        info.actualSize().ifPresent(v -> m.put("actual-size", v));
        m.put("virtual-size", info.virtualSize());
        info.clusterSize().ifPresent(v -> {
            if (v != 0) {
                m.put("cluster-size", (long) v);
            }
        });
        if (encrypted(info)) {
            m.put("encrypted", true);
        }
        info.backingFilename().ifPresent(v -> m.put("backing-filename", v));
        layer.fullBackingName().ifPresent(v -> m.put("full-backing-filename", v));
        info.backingFormat().ifPresent(v -> m.put("backing-filename-format", v));
        if (!info.snapshots().isEmpty()) {
            List<Object> snapshots = new ArrayList<>();
            for (SnapshotInfo sn : info.snapshots()) {
                snapshots.add(toMap(sn));
            }
            m.put("snapshots", snapshots);
        }
        Map<String, Object> specific = formatSpecific(layer);
        if (!specific.isEmpty()) {
            m.put("format-specific", specific);
        }
        return m;
    }

    /** Whether the layer's data is encrypted, as QEMU's {@code encrypted}: a luks container, or qcow2 encryption. */
    static boolean encrypted(ImageInfo info) {
        return info.format().equals("luks") || info.formatSpecific().containsKey("encrypt");
    }

    /** A snapshot as QEMU's {@code SnapshotInfo} object, in QAPI field order. */
    public static Map<String, Object> toMap(SnapshotInfo sn) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", sn.id());
        m.put("name", sn.name());
        m.put("vm-state-size", sn.vmStateSize());
        m.put("date-sec", sn.dateSec());
        m.put("date-nsec", sn.dateNsec());
        m.put("vm-clock-sec", sn.vmClockNsec() / NANOS);
        m.put("vm-clock-nsec", sn.vmClockNsec() % NANOS);
        if (sn.icount() != -1) {
            m.put("icount", sn.icount());
        }
        return m;
    }

    /**
     * QEMU's {@code dump_snapshots}: "Snapshot list:", the column heads and one line per snapshot, each
     * line ending with a newline; nothing at all when there are no snapshots. Dates are in the local time
     * zone, as QEMU shows them.
     */
    public static String snapshotTable(List<SnapshotInfo> snapshots) {
        // the zone only for a table to show: ZoneId.systemDefault() reads the time-zone database and asks
        // ServiceLoader for time-zone rule providers, which opens every jar of the module path (info on an image
        // without snapshots: ~25% of its CPU)
        return snapshots.isEmpty() ? "" : snapshotTable(snapshots, ZoneId.systemDefault());
    }

    /** {@link #snapshotTable(List)} with dates in {@code zone}. */
    public static String snapshotTable(List<SnapshotInfo> snapshots, ZoneId zone) {
        if (snapshots.isEmpty()) {
            return "";
        }
        StringBuilder sb = new StringBuilder("Snapshot list:\n");
        sb.append(String.format(Locale.ROOT, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE",
                "VM CLOCK", "ICOUNT"));
        for (SnapshotInfo sn : snapshots) {
            long secs = sn.vmClockNsec() / NANOS;
            String clock = String.format(Locale.ROOT, "%02d:%02d:%02d.%03d", secs / 3600, (secs / 60) % 60,
                    secs % 60, (sn.vmClockNsec() / 1_000_000) % 1000);
            String date = Dates.DATE.format(Instant.ofEpochSecond(sn.dateSec()).atZone(zone));
            sb.append(String.format(Locale.ROOT, "%-9s %-16s %8s%20s%13s%11s\n", sn.id(), sn.name(),
                    Sizes.human(sn.vmStateSize()), date, clock, sn.icount() == -1 ? "" : Long.toString(sn.icount())));
        }
        return sb.toString();
    }

    /**
     * The {@code format-specific} union as QEMU prints it: {@code {"type": format, "data": {...}}}. A
     * driver may return that shape itself, or just the data fields.
     */
    static Map<String, Object> formatSpecific(ImageInfo info) {
        Map<String, Object> fs = info.formatSpecific();
        if (fs.isEmpty()) {
            return Map.of();
        }
        if (fs.size() == 2 && fs.containsKey("type") && fs.get("data") instanceof Map) {
            return fs;
        }
        Map<String, Object> union = new LinkedHashMap<>();
        union.put("type", info.format());
        union.put("data", fs);
        return union;
    }

    /**
     * {@link #formatSpecific(ImageInfo)} with the file names in it ({@code filename} fields, e.g. VMDK's extents)
     * shown as QEMU names a layer's child files: relative to the name the user gave the layer.
     */
    static Map<String, Object> formatSpecific(Layer layer) {
        Map<String, Object> union = formatSpecific(layer.info());
        if (union.isEmpty()) {
            return union;
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> shown = (Map<String, Object>) displayNames(union, layer.info().filename(),
                layer.displayName());
        return shown;
    }

    // instanceof tests, not a pattern switch, here and in dump: a pattern switch's bootstrap spins a class when
    // it first runs, which no AOT cache of JDK 25 keeps (~1-3 ms of a command that takes ~80)
    private static Object displayNames(Object value, String storageName, String displayName) {
        if (value instanceof Map<?, ?> map) {
            Map<String, Object> out = new LinkedHashMap<>();
            map.forEach((k, v) -> out.put((String) k, k.equals("filename") && v instanceof String name
                    ? displayFileName(name, storageName, displayName) : displayNames(v, storageName, displayName)));
            return out;
        }
        if (value instanceof List<?> list) {
            return list.stream().map(v -> displayNames(v, storageName, displayName)).toList();
        }
        return value;
    }

    /** {@code name}, a storage name, as QEMU shows it: the layer's own, or one beside it, in the user's terms. */
    static String displayFileName(String name, String storageName, String displayName) {
        if (name.equals(storageName)) {
            return displayName;
        }
        int slash = storageName.lastIndexOf('/');
        if (slash >= 0 && name.startsWith(storageName.substring(0, slash + 1))) {
            return combine(displayName, name.substring(slash + 1));
        }
        return name;
    }

    /** {@code qemu-img info --output=json}: one object, or with a chain, an array of them; no final newline. */
    public static String json(List<Layer> layers, boolean chain) {
        if (!chain) {
            return Json.pretty(toMap(layers.getFirst()));
        }
        List<Object> all = new ArrayList<>();
        for (Layer l : layers) {
            all.add(toMap(l));
        }
        return Json.pretty(all);
    }

    /** {@code qemu-img info}'s human output, layers separated by an empty line; ends with a newline. */
    public static String human(List<Layer> layers) {
        StringBuilder sb = new StringBuilder();
        for (Layer layer : layers) {
            if (!sb.isEmpty()) {
                sb.append('\n');
            }
            human(sb, layer);
        }
        return sb.toString();
    }

    private static void human(StringBuilder sb, Layer layer) {
        ImageInfo info = layer.info();
        sb.append("image: ").append(layer.displayName()).append('\n');
        sb.append("file format: ").append(info.format()).append('\n');
        sb.append("virtual size: ").append(Sizes.human(info.virtualSize())).append(" (")
                .append(info.virtualSize()).append(" bytes)\n");
        sb.append("disk size: ").append(info.actualSize().isPresent() ? Sizes.human(info.actualSize().getAsLong())
                : "unavailable").append('\n');
        // qemu-img 7.2 prints encrypted before cluster_size
        if (encrypted(info)) {
            sb.append("encrypted: yes\n");
        }
        if (info.clusterSize().isPresent() && info.clusterSize().getAsInt() != 0) {
            sb.append("cluster_size: ").append(info.clusterSize().getAsInt()).append('\n');
        }
        if (info.dirty()) {
            sb.append("cleanly shut down: no\n");
        }
        if (info.backingFilename().isPresent()) {
            String stored = info.backingFilename().get();
            String full = layer.fullBackingName().orElseThrow();
            sb.append("backing file: ").append(stored);
            if (!stored.equals(full)) {
                sb.append(" (actual path: ").append(full).append(')');
            }
            sb.append('\n');
            info.backingFormat().ifPresent(f -> sb.append("backing file format: ").append(f).append('\n'));
        }
        sb.append(snapshotTable(info.snapshots()));
        sb.append(formatSpecificHuman(layer));
    }

    /**
     * The {@code Format specific information:} block of {@code qemu-img info}'s human output (also qemu-io's
     * {@code info}), or an empty string for a layer without format-specific fields.
     */
    public static String formatSpecificHuman(Layer layer) {
        Map<String, Object> specific = formatSpecific(layer);
        if (specific.isEmpty()) {
            return "";
        }
        StringBuilder sb = new StringBuilder("Format specific information:\n");
        dump(sb, 1, specific.get("data"));
        return sb.toString();
    }

    /** QEMU's {@code dump_qobject}: keys in QDict order with dashes shown as spaces. */
    private static void dump(StringBuilder sb, int indent, Object value) {
        if (value instanceof Map<?, ?> map) {
            List<String> keys = new ArrayList<>();
            map.keySet().forEach(k -> keys.add((String) k));
            for (String key : Json.qdictOrder(keys)) {
                Object v = map.get(key);
                boolean composite = v instanceof Map || v instanceof List;
                sb.repeat(' ', indent * 4).append(key.replace('-', ' ')).append(':')
                        .append(composite ? '\n' : ' ');
                dump(sb, indent + 1, v);
                if (!composite) {
                    sb.append('\n');
                }
            }
        } else if (value instanceof List<?> list) {
            int i = 0;
            for (Object v : list) {
                boolean composite = v instanceof Map || v instanceof List;
                sb.repeat(' ', indent * 4).append('[').append(i++).append("]:").append(composite ? '\n' : ' ');
                dump(sb, indent + 1, v);
                if (!composite) {
                    sb.append('\n');
                }
            }
        } else {
            sb.append(value); // null as "null", as the switch's case null did
        }
    }
}
