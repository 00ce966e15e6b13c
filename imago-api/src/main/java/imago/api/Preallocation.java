package imago.api;

import java.util.Locale;

/** How much of an image's space is reserved up front, with qemu-img's names. */
public enum Preallocation {
    /** Nothing is reserved; the file stays sparse. */
    OFF,
    /** Format metadata is allocated, data is not. */
    METADATA,
    /** Space is reserved with {@code posix_fallocate} but not written. */
    FALLOC,
    /** Space is reserved by writing zeroes. */
    FULL;

    /** The qemu-img spelling: {@code off}, {@code metadata}, {@code falloc}, {@code full}. */
    public String qemuName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses the qemu-img spelling.
     *
     * @throws IllegalArgumentException if {@code name} is not one of the four modes
     */
    public static Preallocation parse(String name) {
        for (Preallocation p : values()) {
            if (p.qemuName().equals(name)) {
                return p;
            }
        }
        throw new IllegalArgumentException("Invalid preallocation mode: '" + name
                + "' (expected off, metadata, falloc or full)");
    }
}
