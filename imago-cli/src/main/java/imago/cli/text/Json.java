package imago.cli.text;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * Writes JSON the way QEMU's {@code qobject_to_json_pretty} does, so that {@code imago info
 * --output=json} prints byte for byte what {@code qemu-img info --output=json} prints.
 *
 * <p>Values are {@link Map}s with {@link String} keys, {@link List}s, {@link String}s, {@link Number}s,
 * {@link Boolean}s and {@code null}. Objects are indented by four spaces per level, an empty object
 * is <code>{\n}</code>, and non-ASCII characters are written as {@code \\uXXXX} escapes. The keys of an
 * object come out in the order QEMU's {@code QDict} iterates them: by hash bucket, and newest first
 * within a bucket; give the maps in QAPI's field order (the insertion order) so that collisions
 * resolve as in QEMU.
 */
public final class Json {
    private static final int QDICT_BUCKET_MAX = 512;

    private Json() {
    }

    /** {@code value} as QEMU pretty-prints it, without a final newline. */
    public static String pretty(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, true, 0);
        return sb.toString();
    }

    /**
     * {@code value} on one line as QEMU's {@code qobject_to_json} writes it (<code>{"a": 1, "b": [2, 3]}</code>), as
     * in the {@code json:} names QEMU gives images opened with options.
     */
    public static String compact(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, false, 0);
        return sb.toString();
    }

    /**
     * The keys in the order a QEMU {@code QDict} that received them in this order iterates them.
     */
    public static List<String> qdictOrder(Collection<String> insertionOrder) {
        List<String> keys = new ArrayList<>(insertionOrder);
        // by bucket, and in one bucket the most recently inserted key first (QLIST_INSERT_HEAD): one long
        // per key, its bucket above its index counted down, sorted (no comparator: its lambdas are spun
        // at run time, ~1 ms of a 0.1 s command)
        long[] order = new long[keys.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = (long) bucket(keys.get(i)) << 32 | (Integer.MAX_VALUE - i);
        }
        Arrays.sort(order);
        List<String> out = new ArrayList<>(keys.size());
        for (long o : order) {
            out.add(keys.get(Integer.MAX_VALUE - (int) o));
        }
        return out;
    }

    /** QEMU's {@code tdb_hash(key) % QDICT_BUCKET_MAX}. */
    static int bucket(String key) {
        byte[] b = key.getBytes(StandardCharsets.UTF_8);
        int value = 0x238F13AF * b.length;
        for (int i = 0; i < b.length; i++) {
            value += (b[i] & 0xff) << (i * 5 % 24);
        }
        int hash = 1103515243 * value + 12345;
        return (int) (Integer.toUnsignedLong(hash) % QDICT_BUCKET_MAX);
    }

    /**
     * Writes {@code value} at nesting level {@code depth}: pretty, each member on its own line indented four spaces
     * per level and {@code ","} between members; else on one line, with {@code ", "} between them.
     */
    // instanceof, not a pattern switch: its bootstrap spins a class at run time that no AOT cache keeps
    private static void write(StringBuilder sb, Object value, boolean pretty, int depth) {
        if (value == null) {
            sb.append("null");
        } else if (value instanceof Map<?, ?> map) {
            writeObject(sb, map, pretty, depth);
        } else if (value instanceof List<?> list) {
            writeArray(sb, list, pretty, depth);
        } else if (value instanceof String s) {
            writeString(sb, s);
        } else if (value instanceof Boolean b) {
            sb.append(b.booleanValue());
        } else if (value instanceof Double d) {
            sb.append(number(d));
        } else if (value instanceof Float f) {
            sb.append(number(f.doubleValue()));
        } else if (value instanceof BigDecimal d) {
            sb.append(d.toPlainString());
        } else if (value instanceof BigInteger i) {
            sb.append(i);
        } else if (value instanceof Number n) {
            sb.append(n.longValue());
        } else {
            throw new IllegalArgumentException("not a JSON value: " + value.getClass().getName());
        }
    }

    private static void writeObject(StringBuilder sb, Map<?, ?> map, boolean pretty, int depth) {
        List<String> keys = new ArrayList<>();
        for (Object k : map.keySet()) {
            if (!(k instanceof String s)) {
                throw new IllegalArgumentException("JSON object keys must be strings, got " + k);
            }
            keys.add(s);
        }
        sb.append('{');
        String sep = "";
        for (String key : qdictOrder(keys)) {
            sb.append(sep);
            newline(sb, pretty, depth + 1);
            writeString(sb, key);
            sb.append(": ");
            write(sb, map.get(key), pretty, depth + 1);
            sep = pretty ? "," : ", ";
        }
        newline(sb, pretty, depth);
        sb.append('}');
    }

    private static void writeArray(StringBuilder sb, List<?> list, boolean pretty, int depth) {
        sb.append('[');
        String sep = "";
        for (Object v : list) {
            sb.append(sep);
            newline(sb, pretty, depth + 1);
            write(sb, v, pretty, depth + 1);
            sep = pretty ? "," : ", ";
        }
        newline(sb, pretty, depth);
        sb.append(']');
    }

    /** A line break and the indent of level {@code depth} when pretty; nothing on one line. */
    private static void newline(StringBuilder sb, boolean pretty, int depth) {
        if (!pretty) {
            return;
        }
        sb.append('\n');
        sb.repeat(' ', depth * 4);
    }

    private static void writeString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            switch (cp) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (cp > 0xFFFF) {
                        hex4(sb, 0xD800 + ((cp - 0x10000) >> 10));
                        hex4(sb, 0xDC00 + ((cp - 0x10000) & 0x3FF));
                    } else if (cp < 0x20 || cp >= 0x7F) {
                        hex4(sb, cp);
                    } else {
                        sb.append((char) cp);
                    }
                }
            }
        }
        sb.append('"');
    }

    private static void hex4(StringBuilder sb, int v) {
        sb.append("\\u");
        String h = Integer.toHexString(v).toUpperCase(java.util.Locale.ROOT);
        sb.repeat('0', 4 - h.length()).append(h);
    }

    /** QEMU prints doubles with {@code %.17g}, then drops trailing zeros. */
    private static String number(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            throw new IllegalArgumentException("not a JSON number: " + d);
        }
        if (d == Math.rint(d) && Math.abs(d) < 1e17) {
            return Long.toString((long) d);
        }
        return Sizes.formatG(d, 17);
    }
}
