package imago.testkit;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Parses {@code qemu-img map --output=json} for the differential tests. */
public final class QemuMap {
    private static final Pattern OBJECT = Pattern.compile("\\{([^}]*)\\}");

    private QemuMap() {
    }

    /**
     * One entry of the map.
     *
     * @param start first guest byte
     * @param length number of bytes
     * @param depth the backing level the bytes come from
     * @param present whether a layer holds them
     * @param zero whether they read as zeroes
     * @param data whether they are stored as data
     * @param offset the host offset, -1 when absent
     */
    public record Entry(long start, long length, int depth, boolean present, boolean zero, boolean data, long offset) {
    }

    /** The entries of {@code json}, in order. */
    public static List<Entry> parse(String json) {
        List<Entry> out = new ArrayList<>();
        Matcher m = OBJECT.matcher(json);
        while (m.find()) {
            String o = m.group(1);
            out.add(new Entry(num(o, "start"), num(o, "length"), (int) num(o, "depth"), bool(o, "present"),
                    bool(o, "zero"), bool(o, "data"), o.contains("\"offset\"") ? num(o, "offset") : -1));
        }
        return out;
    }

    /**
     * The entries as "start+length kind" lines, with the host offset reduced to whether there is one and
     * adjacent entries of the same kind merged: for comparing images whose host layouts differ.
     */
    public static List<String> kinds(String json) {
        List<String> out = new ArrayList<>();
        long start = -1;
        long end = -1;
        String kind = null;
        for (Entry e : parse(json)) {
            String k = "depth " + e.depth() + (e.present() ? " present" : "") + (e.zero() ? " zero" : "")
                    + (e.data() ? " data" : "") + (e.offset() >= 0 ? " offset" : "");
            if (k.equals(kind) && e.start() == end) {
                end += e.length();
                continue;
            }
            if (kind != null) {
                out.add(start + "+" + (end - start) + " " + kind);
            }
            kind = k;
            start = e.start();
            end = e.start() + e.length();
        }
        if (kind != null) {
            out.add(start + "+" + (end - start) + " " + kind);
        }
        return out;
    }

    private static long num(String o, String key) {
        Matcher m = Pattern.compile("\"" + key + "\":\\s*(\\d+)").matcher(o);
        if (!m.find()) {
            throw new AssertionError("no " + key + " in " + o);
        }
        return Long.parseLong(m.group(1));
    }

    private static boolean bool(String o, String key) {
        Matcher m = Pattern.compile("\"" + key + "\":\\s*(true|false)").matcher(o);
        if (!m.find()) {
            throw new AssertionError("no " + key + " in " + o);
        }
        return m.group(1).equals("true");
    }
}
