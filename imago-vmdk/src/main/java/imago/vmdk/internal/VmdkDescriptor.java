package imago.vmdk.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.IllegalCharsetNameException;
import java.nio.charset.StandardCharsets;
import java.nio.charset.UnsupportedCharsetException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A parsed descriptor: the text that says what a VMDK is made of. It is read strictly: every line is blank, a
 * comment, a {@code key=value} entry (the header and the {@code ddb.*} disk database) or an extent line, and each
 * limit ({@link #MAX_BYTES}, {@link #MAX_LINES}, {@link #MAX_EXTENTS}, {@link #MAX_NAME_BYTES}) is checked before
 * anything is kept. The text is kept as read, so that a rewrite (a new CID) changes only the bytes it must.
 *
 * @param resource the file the descriptor was read from, for messages
 * @param base where the descriptor starts in that file (0, or the embedded descriptor's offset)
 * @param version the {@code version} entry (1, 2 or 3)
 * @param cid the content ID (unsigned 32 bits)
 * @param parentCid the parent's content ID ({@code ffffffff} without a parent)
 * @param createType the {@code createType} entry
 * @param parentFileNameHint the backing file, for delta disks
 * @param extents the extent lines, in order
 * @param entries every {@code key=value} entry in order, unknown ones included, quotes removed
 * @param text the descriptor's bytes up to the first NUL (the rest is never read, as in QEMU)
 * @param cidStart where the CID's hex digits start in {@code text}
 * @param cidEnd where they end
 */
record VmdkDescriptor(String resource, long base, int version, long cid, long parentCid, String createType,
        Optional<String> parentFileNameHint, List<VmdkExtentLine> extents, SequencedMap<String, String> entries,
        byte[] text, int cidStart, int cidEnd) {

    /** Every size in a descriptor counts these. */
    static final int SECTOR = 512;
    /** The largest descriptor read: QEMU reads at most 1 MiB of one. */
    static final int MAX_BYTES = 1 << 20;
    /** The most lines a descriptor may have. */
    static final int MAX_LINES = 16_384;
    /** The most extents a descriptor may list (as many as the probe module opens files for one image). */
    static final int MAX_EXTENTS = 4096;
    /** The longest extent file name, in bytes: QEMU reads names of at most 511 bytes. */
    static final int MAX_NAME_BYTES = 511;
    /** The CID of an image without a parent, in its {@code parentCID}. */
    static final long NO_PARENT = 0xFFFF_FFFFL;
    /** The largest virtual size: sector counts whose byte count still fits a signed 64-bit offset. */
    static final long MAX_SECTORS = Long.MAX_VALUE / SECTOR;

    /** Validates and freezes the fields. */
    VmdkDescriptor {
        Objects.requireNonNull(resource, "resource");
        Objects.requireNonNull(createType, "createType");
        Objects.requireNonNull(parentFileNameHint, "parentFileNameHint");
        extents = List.copyOf(extents);
        entries = Collections.unmodifiableSequencedMap(new LinkedHashMap<>(entries));
        Objects.requireNonNull(text, "text");
    }

    /**
     * Parses the descriptor in {@code raw} (its remaining bytes: the text, possibly followed by NUL padding).
     *
     * @param resource the file, for messages
     * @param base where {@code raw} starts in that file, for messages
     * @throws ImageLimitException if the descriptor is larger than {@link #MAX_BYTES} or has more lines or
     *         extents than the limits allow
     * @throws CorruptImageException if a line does not parse, or a needed entry is missing or repeated
     * @throws UnsupportedFeatureException if the descriptor's encoding is not one imago reads
     */
    static VmdkDescriptor parse(String resource, long base, ByteBuffer raw)
            throws CorruptImageException, ImageLimitException, UnsupportedFeatureException {
        if (raw.remaining() > MAX_BYTES) {
            throw new ImageLimitException(resource, base, "the descriptor of " + raw.remaining()
                    + " bytes is larger than the limit of " + MAX_BYTES + " bytes");
        }
        byte[] all = new byte[raw.remaining()];
        raw.duplicate().get(all);
        int length = 0;
        while (length < all.length && all[length] != 0) {
            length++;
        }
        // what follows the first NUL is not read, as QEMU does not read it: its CID rewrite of a descriptor file
        // leaves the old text's last bytes there when the new CID is shorter
        byte[] text = Arrays.copyOf(all, length);
        return new Parser(resource, base, text, charset(resource, base, text)).parse();
    }

    /**
     * The charset named by an {@code encoding} entry (default UTF-8); only charsets that keep ASCII as it is,
     * so that the grammar's characters and the CID are the same bytes in any of them.
     */
    private static Charset charset(String resource, long base, byte[] text) throws UnsupportedFeatureException {
        String latin = new String(text, StandardCharsets.ISO_8859_1);
        Matcher m = Pattern.compile("(?m)^[ \\t]*encoding[ \\t]*=[ \\t]*\"([^\"\\r\\n]*)\"").matcher(latin);
        if (!m.find()) {
            return StandardCharsets.UTF_8;
        }
        String name = m.group(1);
        String lower = name.toLowerCase(Locale.ROOT);
        boolean asciiCompatible = lower.equals("utf-8") || lower.equals("us-ascii") || lower.startsWith("iso-8859-")
                || lower.startsWith("windows-125") || lower.equals("gbk") || lower.equals("big5")
                || lower.equals("shift_jis");
        try {
            if (asciiCompatible) {
                return Charset.forName(name);
            }
        } catch (IllegalCharsetNameException | UnsupportedCharsetException e) {
            // reported below
        }
        throw new UnsupportedFeatureException(resource, Feature.OTHER, "descriptor encoding " + name,
                "the descriptor's encoding \"" + name + "\" is not supported (at offset " + base + ")");
    }

    /** The value of entry {@code key}, if the descriptor has it. */
    Optional<String> entry(String key) {
        return Optional.ofNullable(entries.get(key));
    }

    /**
     * The descriptor's bytes with the CID replaced by {@code newCid}, written with as many hex digits as the old
     * one has (so nothing else moves: the rewrite is one small in-place write).
     *
     * @throws IllegalArgumentException if {@code newCid} needs more digits than the old CID has
     */
    byte[] withCid(long newCid) {
        int width = cidEnd - cidStart;
        String digits = String.format(Locale.ROOT, "%0" + width + "x", newCid);
        if (digits.length() != width) {
            throw new IllegalArgumentException("CID " + Long.toHexString(newCid) + " does not fit " + width
                    + " digits");
        }
        byte[] out = text.clone();
        System.arraycopy(digits.getBytes(StandardCharsets.US_ASCII), 0, out, cidStart, width);
        return out;
    }

    /** The line-by-line reader behind {@link #parse}. */
    private static final class Parser {
        private final String resource;
        private final long base;
        private final byte[] text;
        private final Charset charset;
        private final List<VmdkExtentLine> extents = new ArrayList<>();
        private final SequencedMap<String, String> entries = new LinkedHashMap<>();
        private int cidStart = -1;
        private int cidEnd = -1;

        Parser(String resource, long base, byte[] text, Charset charset) {
            this.resource = resource;
            this.base = base;
            this.text = text;
            this.charset = charset;
        }

        VmdkDescriptor parse() throws CorruptImageException, ImageLimitException {
            int lineNumber = 0;
            int start = 0;
            while (start < text.length) {
                int end = start;
                while (end < text.length && text[end] != '\n') {
                    end++;
                }
                lineNumber++;
                if (lineNumber > MAX_LINES) {
                    throw new ImageLimitException(resource, base + start, "the descriptor has more than " + MAX_LINES
                            + " lines");
                }
                int stop = end > start && text[end - 1] == '\r' ? end - 1 : end;
                line(decode(start, stop), lineNumber, start);
                start = end + 1;
            }
            String version = required("version", 0);
            if (!version.equals("1") && !version.equals("2") && !version.equals("3")) {
                throw new CorruptImageException(resource, base, "unsupported descriptor version '" + version
                        + "' (expected 1, 2 or 3)");
            }
            long cid = cid("CID");
            long parentCid = cid("parentCID");
            String createType = required("createType", 0);
            Optional<String> hint = Optional.ofNullable(entries.get("parentFileNameHint"));
            if (hint.isPresent() && hint.get().isEmpty()) {
                throw new CorruptImageException(resource, base, "the descriptor's parentFileNameHint is empty");
            }
            long total = 0;
            for (VmdkExtentLine e : extents) {
                total += e.sectors();
                if (total > MAX_SECTORS || total < 0) {
                    throw new ImageLimitException(resource, base, "the extents add up to more than " + MAX_SECTORS
                            + " sectors");
                }
            }
            return new VmdkDescriptor(resource, base, Integer.parseInt(version), cid, parentCid, createType, hint,
                    extents, entries, text, cidStart, cidEnd);
        }

        private String decode(int from, int to) throws CorruptImageException {
            try {
                CharBuffer chars = charset.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(text, from, to - from));
                return chars.toString();
            } catch (CharacterCodingException e) {
                throw new CorruptImageException(resource, base + from, "a descriptor line is not valid "
                        + charset.name(), e);
            }
        }

        private void line(String raw, int number, int at) throws CorruptImageException, ImageLimitException {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                return;
            }
            int space = firstBlank(line);
            String first = space < 0 ? line : line.substring(0, space);
            switch (first) {
                case "RW", "RDONLY", "NOACCESS" -> extent(line, number, at);
                default -> entry(line, number, at, raw);
            }
        }

        private static int firstBlank(String s) {
            for (int i = 0; i < s.length(); i++) {
                if (s.charAt(i) == ' ' || s.charAt(i) == '\t') {
                    return i;
                }
            }
            return -1;
        }

        /** {@code key = value} or {@code key = "value"}; keys are unique. */
        private void entry(String line, int number, int at, String raw) throws CorruptImageException {
            int eq = line.indexOf('=');
            String key = eq < 0 ? "" : line.substring(0, eq).strip();
            if (eq < 0 || !key.matches("[A-Za-z_][A-Za-z0-9_.\\-]*")) {
                throw invalid(number, at, "neither an entry, an extent nor a comment");
            }
            String rest = line.substring(eq + 1).strip();
            String value;
            if (rest.startsWith("\"")) {
                int close = rest.indexOf('"', 1);
                if (close < 0 || !rest.substring(close + 1).isBlank()) {
                    throw invalid(number, at, "the value of " + key + " is not one quoted string");
                }
                value = rest.substring(1, close);
            } else {
                if (rest.isEmpty() || rest.contains("\"") || firstBlank(rest) >= 0) {
                    throw invalid(number, at, "the value of " + key + " is not one word or one quoted string");
                }
                value = rest;
            }
            if (controls(value)) {
                throw invalid(number, at, "the value of " + key + " has control characters");
            }
            if (entries.putIfAbsent(key, value) != null) {
                throw invalid(number, at, "the entry " + key + " is given twice");
            }
            if (key.equals("CID")) {
                // the CID's digits, as bytes of the text: ASCII in every encoding allowed
                int valueAt = raw.indexOf(value, raw.indexOf('='));
                cidStart = at + byteLength(raw.substring(0, valueAt));
                cidEnd = cidStart + value.length();
            }
        }

        private int byteLength(String s) {
            return s.getBytes(charset).length;
        }

        /** {@code ACCESS SECTORS TYPE ["NAME" [OFFSET]]}. */
        private void extent(String line, int number, int at) throws CorruptImageException, ImageLimitException {
            if (extents.size() == MAX_EXTENTS) {
                throw new ImageLimitException(resource, base + at, "the descriptor lists more than " + MAX_EXTENTS
                        + " extents");
            }
            String[] head = line.split("[ \\t]+", 4);
            if (head.length < 3) {
                throw invalid(number, at, "an extent line needs access, size and type");
            }
            VmdkExtentLine.Access access = VmdkExtentLine.Access.valueOf(head[0]);
            long sectors = number(head[1], number, at, "extent size");
            if (sectors <= 0 || sectors > MAX_SECTORS) {
                throw invalid(number, at, "extent size " + head[1] + " is not between 1 and " + MAX_SECTORS
                        + " sectors");
            }
            VmdkExtentLine.Type type;
            try {
                type = VmdkExtentLine.Type.valueOf(head[2]);
            } catch (IllegalArgumentException e) {
                throw invalidExtent(line, number, at, "unsupported extent type '" + head[2] + "'");
            }
            String tail = head.length == 4 ? head[3] : "";
            Optional<String> name = Optional.empty();
            long offset = -1;
            if (!tail.isEmpty()) {
                if (!tail.startsWith("\"")) {
                    throw invalid(number, at, "the extent's file name is not quoted");
                }
                int close = tail.indexOf('"', 1);
                if (close < 0) {
                    throw invalid(number, at, "the extent's file name has no closing quote");
                }
                name = Optional.of(name(tail.substring(1, close), number, at));
                String after = tail.substring(close + 1).strip();
                if (!after.isEmpty()) {
                    if (firstBlank(after) >= 0 || after.length() == tail.substring(close + 1).length()) {
                        throw invalid(number, at, "unexpected text after the extent's file name");
                    }
                    offset = number(after, number, at, "extent offset");
                }
            }
            switch (type) {
                case ZERO -> {
                    if (name.isPresent()) {
                        throw invalid(number, at, "a ZERO extent has no file");
                    }
                }
                case FLAT -> {
                    if (name.isEmpty() || offset < 0) {
                        throw invalidExtent(line, number, at, "a FLAT extent needs a file and an offset");
                    }
                    if (offset > MAX_SECTORS - sectors) {
                        throw invalid(number, at, "the FLAT extent ends past " + MAX_SECTORS + " sectors");
                    }
                }
                default -> {
                    if (name.isEmpty() || offset >= 0) {
                        throw invalidExtent(line, number, at, "a " + type + " extent needs a file and no offset");
                    }
                }
            }
            extents.add(new VmdkExtentLine(access, sectors, type, name, Math.max(offset, 0), number));
        }

        private String name(String name, int number, int at) throws CorruptImageException {
            if (name.isEmpty()) {
                throw invalid(number, at, "the extent's file name is empty");
            }
            if (byteLength(name) > MAX_NAME_BYTES) {
                throw invalid(number, at, "the extent's file name is longer than " + MAX_NAME_BYTES + " bytes");
            }
            if (controls(name)) {
                throw invalid(number, at, "the extent's file name has control characters");
            }
            return name;
        }

        private static boolean controls(String s) {
            return s.chars().anyMatch(c -> c < 0x20 || c == 0x7f);
        }

        private long number(String s, int number, int at, String what) throws CorruptImageException {
            if (!s.matches("[0-9]{1,19}")) {
                throw invalid(number, at, what + " '" + s + "' is not a decimal number");
            }
            try {
                return Long.parseLong(s);
            } catch (NumberFormatException e) {
                throw invalid(number, at, what + " " + s + " is too large");
            }
        }

        private String required(String key, int at) throws CorruptImageException {
            String v = entries.get(key);
            if (v == null) {
                throw new CorruptImageException(resource, base + at, "the descriptor has no " + key + " entry");
            }
            return v;
        }

        private long cid(String key) throws CorruptImageException {
            String v = required(key, 0);
            if (!v.matches("[0-9a-fA-F]{1,8}")) {
                throw new CorruptImageException(resource, base, "the descriptor's " + key + " '" + v
                        + "' is not a 32-bit hex number");
            }
            return Long.parseLong(v, 16);
        }

        /** An extent line QEMU refuses too: its words (with the line) first, then the line's number and why. */
        private CorruptImageException invalidExtent(String line, int number, int at, String why) {
            return new CorruptImageException(resource, base + at, "Invalid extent line: " + line + " (descriptor line "
                    + number + ": " + why + ")");
        }

        private CorruptImageException invalid(int number, int at, String why) {
            return new CorruptImageException(resource, base + at, "descriptor line " + number + ": " + why);
        }
    }
}
