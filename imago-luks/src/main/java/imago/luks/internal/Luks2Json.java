package imago.luks.internal;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A strict, bounded JSON reader and a compact writer for the LUKS2 metadata area. The area is at most 4 MiB of
 * attacker-controlled text, so the reader refuses anything LUKS2 never needs before it can cost time or memory:
 * nesting deeper than {@value #MAX_DEPTH}, more than {@value #MAX_VALUES} values, strings longer than
 * {@value #MAX_STRING} characters, numbers that are not integers or do not fit a {@code long}, duplicate keys,
 * and trailing bytes other than the NUL padding. Recursion depth is bounded by the nesting limit, and every loop
 * consumes input, so the time is linear in the text.
 *
 * <p>Values: objects as insertion-ordered {@code Map<String, Object>}, arrays as {@code List<Object>}, strings,
 * integers as {@link Long}, {@link Boolean} and {@link #NULL}.
 */
final class Luks2Json {
    /** The deepest nesting accepted (LUKS2 metadata nests four levels). */
    static final int MAX_DEPTH = 16;
    /** The most values accepted in one document (cryptsetup's 32 key slots, tokens and digests fit many times). */
    static final int MAX_VALUES = 65_536;
    /** The longest string accepted, in characters (token payloads are the longest LUKS2 strings). */
    static final int MAX_STRING = 65_536;
    /** JSON's {@code null}, distinct from an absent member. */
    static final Object NULL = new Object() {
        @Override
        public String toString() {
            return "null";
        }
    };

    /** A JSON text that is malformed or past a limit, at {@code position} (characters from the start). */
    static final class JsonException extends Exception {
        private static final long serialVersionUID = 1L;
        private final int position;

        JsonException(int position, String message) {
            super(message + " at character " + position);
            this.position = position;
        }

        int position() {
            return position;
        }
    }

    private final String text;
    private int pos;
    private int values;

    private Luks2Json(String text) {
        this.text = text;
    }

    /** Parses {@code text}, one JSON value followed by nothing but whitespace. */
    static Object parse(String text) throws JsonException {
        Luks2Json p = new Luks2Json(text);
        p.skipSpace();
        Object v = p.value(0);
        p.skipSpace();
        if (p.pos != text.length()) {
            throw new JsonException(p.pos, "trailing characters after the JSON value");
        }
        return v;
    }

    private Object value(int depth) throws JsonException {
        if (++values > MAX_VALUES) {
            throw new JsonException(pos, "more than " + MAX_VALUES + " JSON values");
        }
        if (pos >= text.length()) {
            throw new JsonException(pos, "JSON ends where a value should start");
        }
        char c = text.charAt(pos);
        return switch (c) {
            case '{' -> object(depth + 1);
            case '[' -> array(depth + 1);
            case '"' -> string();
            case 't' -> literal("true", Boolean.TRUE);
            case 'f' -> literal("false", Boolean.FALSE);
            case 'n' -> literal("null", NULL);
            default -> {
                if (c == '-' || (c >= '0' && c <= '9')) {
                    yield number();
                }
                throw new JsonException(pos, "unexpected character '" + printable(c) + "'");
            }
        };
    }

    private void checkDepth(int depth) throws JsonException {
        if (depth > MAX_DEPTH) {
            throw new JsonException(pos, "JSON nested deeper than " + MAX_DEPTH + " levels");
        }
    }

    private Map<String, Object> object(int depth) throws JsonException {
        checkDepth(depth);
        pos++;
        Map<String, Object> m = new LinkedHashMap<>();
        skipSpace();
        if (peek() == '}') {
            pos++;
            return Collections.unmodifiableMap(m);
        }
        while (true) {
            skipSpace();
            if (peek() != '"') {
                throw new JsonException(pos, "object key must be a string");
            }
            int at = pos;
            String key = string();
            skipSpace();
            expect(':');
            skipSpace();
            Object v = value(depth);
            if (m.putIfAbsent(key, v) != null) {
                throw new JsonException(at, "duplicate key \"" + key + "\"");
            }
            skipSpace();
            char c = next();
            if (c == '}') {
                return Collections.unmodifiableMap(m);
            }
            if (c != ',') {
                throw new JsonException(pos - 1, "expected ',' or '}' in object");
            }
        }
    }

    private List<Object> array(int depth) throws JsonException {
        checkDepth(depth);
        pos++;
        List<Object> list = new ArrayList<>();
        skipSpace();
        if (peek() == ']') {
            pos++;
            return List.copyOf(list);
        }
        while (true) {
            skipSpace();
            list.add(value(depth));
            skipSpace();
            char c = next();
            if (c == ']') {
                return Collections.unmodifiableList(list);
            }
            if (c != ',') {
                throw new JsonException(pos - 1, "expected ',' or ']' in array");
            }
        }
    }

    private String string() throws JsonException {
        int start = pos;
        pos++;
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (sb.length() > MAX_STRING) {
                throw new JsonException(start, "string longer than " + MAX_STRING + " characters");
            }
            char c = next();
            if (c == '"') {
                return sb.toString();
            }
            if (c < 0x20) {
                throw new JsonException(pos - 1, "control character in string");
            }
            if (c != '\\') {
                sb.append(c);
                continue;
            }
            char e = next();
            switch (e) {
                case '"', '\\', '/' -> sb.append(e);
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'n' -> sb.append('\n');
                case 'r' -> sb.append('\r');
                case 't' -> sb.append('\t');
                case 'u' -> {
                    if (pos + 4 > text.length()) {
                        throw new JsonException(pos, "truncated \\u escape");
                    }
                    int v = 0;
                    for (int i = 0; i < 4; i++) {
                        int d = Character.digit(text.charAt(pos++), 16);
                        if (d < 0) {
                            throw new JsonException(pos - 1, "bad hex digit in \\u escape");
                        }
                        v = v * 16 + d;
                    }
                    sb.append((char) v);
                }
                default -> throw new JsonException(pos - 1, "bad escape '\\" + printable(e) + "'");
            }
        }
    }

    private Long number() throws JsonException {
        int start = pos;
        if (peek() == '-') {
            pos++;
        }
        int digits = pos;
        while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') {
            pos++;
        }
        if (pos == digits) {
            throw new JsonException(start, "number without digits");
        }
        if (text.charAt(digits) == '0' && pos - digits > 1) {
            throw new JsonException(start, "number with a leading zero");
        }
        if (pos < text.length() && (text.charAt(pos) == '.' || text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
            throw new JsonException(start, "number is not an integer (LUKS2 has none)");
        }
        if (pos - digits > 19) {
            throw new JsonException(start, "number too large (" + (pos - digits) + " digits)");
        }
        try {
            return Long.parseLong(text, start, pos, 10);
        } catch (NumberFormatException e) {
            throw new JsonException(start, "number too large for 64 bits");
        }
    }

    private Object literal(String word, Object v) throws JsonException {
        if (!text.startsWith(word, pos)) {
            throw new JsonException(pos, "unexpected literal (expected " + word + ")");
        }
        pos += word.length();
        return v;
    }

    private void skipSpace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            pos++;
        }
    }

    private char peek() throws JsonException {
        if (pos >= text.length()) {
            throw new JsonException(pos, "JSON ends too early");
        }
        return text.charAt(pos);
    }

    private char next() throws JsonException {
        char c = peek();
        pos++;
        return c;
    }

    private void expect(char c) throws JsonException {
        if (next() != c) {
            throw new JsonException(pos - 1, "expected '" + c + "'");
        }
    }

    private static String printable(char c) {
        return c >= 0x20 && c < 0x7f ? String.valueOf(c) : String.format("\\u%04x", (int) c);
    }

    /**
     * A deep copy of a parsed {@code value} that can be edited: objects as {@link LinkedHashMap} (their members in
     * the order read), arrays as {@link ArrayList}; strings, numbers, booleans and {@link #NULL} as they are.
     */
    static Object mutableCopy(Object value) {
        return switch (value) {
            case Map<?, ?> m -> {
                Map<String, Object> out = new LinkedHashMap<>();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    out.put(e.getKey().toString(), mutableCopy(e.getValue()));
                }
                yield out;
            }
            case List<?> l -> {
                List<Object> out = new ArrayList<>(l.size());
                for (Object o : l) {
                    out.add(mutableCopy(o));
                }
                yield out;
            }
            default -> value;
        };
    }

    /** {@code value} as compact JSON (maps, lists, strings, integers, booleans). */
    static String write(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object value) {
        switch (value) {
            case Map<?, ?> m -> {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!first) {
                        sb.append(',');
                    }
                    first = false;
                    writeString(sb, e.getKey().toString());
                    sb.append(':');
                    write(sb, e.getValue());
                }
                sb.append('}');
            }
            case List<?> l -> {
                sb.append('[');
                for (int i = 0; i < l.size(); i++) {
                    if (i > 0) {
                        sb.append(',');
                    }
                    write(sb, l.get(i));
                }
                sb.append(']');
            }
            case String s -> writeString(sb, s);
            case Long n -> sb.append(n.longValue());
            case Integer n -> sb.append(n.intValue());
            case Boolean b -> sb.append(b.booleanValue());
            default -> {
                if (value != NULL) {
                    throw new IllegalArgumentException("not a JSON value: " + value.getClass().getName());
                }
                sb.append("null");
            }
        }
    }

    /**
     * {@code s} as a JSON string. Control characters and surrogates that are not half of a pair are escaped, so
     * that the UTF-8 text reads back as the same string (a lone surrogate has no UTF-8 form).
     */
    private static void writeString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                default -> {
                    if (Character.isHighSurrogate(c) && i + 1 < s.length()
                            && Character.isLowSurrogate(s.charAt(i + 1))) {
                        sb.append(c).append(s.charAt(++i));
                    } else if (c < 0x20 || Character.isSurrogate(c)) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
