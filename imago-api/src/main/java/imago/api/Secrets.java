package imago.api;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Secrets (passphrases) by id, as qemu-img's {@code --object secret,id=ID,...}: an image option names one by its
 * id ({@code key-secret=ID}) and the driver asks for its bytes. Each value is a copy the set owns; {@link #close()}
 * overwrites them all with zeroes. Neither {@link #toString()} nor any message shows a value. Thread-safe.
 */
public final class Secrets implements AutoCloseable {
    private static final Secrets NONE = new Secrets(true);

    private final Map<String, byte[]> values = new ConcurrentHashMap<>();
    private final boolean frozen;

    private Secrets(boolean frozen) {
        this.frozen = frozen;
    }

    /** A new, empty set. */
    public static Secrets create() {
        return new Secrets(false);
    }

    /** The empty set that takes nothing. */
    public static Secrets none() {
        return NONE;
    }

    /**
     * Keeps a copy of {@code value} under {@code id}, replacing (and wiping) any earlier one; the caller may wipe
     * its array afterwards. @return this set
     *
     * @throws UnsupportedOperationException on {@link #none()}
     */
    public Secrets put(String id, byte[] value) {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(value, "value");
        if (frozen) {
            throw new UnsupportedOperationException("Secrets.none() takes no secrets");
        }
        byte[] old = values.put(id, value.clone());
        if (old != null) {
            Arrays.fill(old, (byte) 0);
        }
        return this;
    }

    /** Keeps {@code value} encoded in UTF-8 under {@code id}, as {@link #put(String, byte[])}. @return this set */
    public Secrets put(String id, char[] value) {
        ByteBuffer utf8 = StandardCharsets.UTF_8.encode(CharBuffer.wrap(value));
        byte[] bytes = new byte[utf8.remaining()];
        utf8.get(bytes);
        try {
            return put(id, bytes);
        } finally {
            Arrays.fill(bytes, (byte) 0);
            if (utf8.hasArray()) {
                Arrays.fill(utf8.array(), (byte) 0);
            }
        }
    }

    /** A copy of the secret called {@code id}, which the caller should wipe when done; empty if there is none. */
    public Optional<byte[]> get(String id) {
        byte[] v = values.get(id);
        return v == null ? Optional.empty() : Optional.of(v.clone());
    }

    /** The ids of the secrets held, sorted. */
    public Set<String> ids() {
        return new TreeSet<>(values.keySet());
    }

    /** Overwrites every value with zeroes and forgets them. */
    @Override
    public void close() {
        values.values().forEach(v -> Arrays.fill(v, (byte) 0));
        values.clear();
    }

    /** The ids only, never a value. */
    @Override
    public String toString() {
        return "Secrets" + ids();
    }
}
