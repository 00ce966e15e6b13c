package imago.api;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;

/**
 * The policy for files that images name (backing files, external data files). Every such file passes
 * through the gate before it is opened; nothing is opened behind its back. Names stored in images are
 * untrusted: a gate sees where they resolve and may refuse.
 */
@FunctionalInterface
public interface OpenGate {

    /**
     * Allows the open or throws.
     *
     * @throws OpenDeniedException to refuse
     * @throws IOException if the decision needs I/O that fails
     */
    void check(OpenRequest request) throws IOException;

    /**
     * Whether the format of a named file may be found by probing when the image records none. Probing
     * a backing file lets a guest-written header choose how the host reads it.
     *
     * @implSpec The default allows probing.
     */
    default boolean allowsProbing(OpenRequest request) {
        return true;
    }

    /** Opens whatever an image names, as qemu-img does. */
    static OpenGate permissive() {
        return request -> { };
    }

    /** Refuses every named file: images with backing or data files do not open. */
    static OpenGate denyAll() {
        return request -> {
            throw new OpenDeniedException(request.referrer().toString(), "refusing to open "
                    + describe(request) + ": opening files named by images is not allowed");
        };
    }

    /**
     * Allows only files inside {@code directory} (after resolving {@code ..} and symbolic links of
     * both), and no format probing of them when the image records no format.
     */
    static OpenGate confinedTo(Path directory) {
        Objects.requireNonNull(directory, "directory");
        return new OpenGate() {
            @Override
            public void check(OpenRequest request) throws IOException {
                Path root = realPathOfExisting(directory.toAbsolutePath().normalize());
                if (!request.target().scheme().equals("file")) {
                    throw new OpenDeniedException(request.referrer().toString(),
                            "refusing to open " + describe(request) + ": not a file inside " + root);
                }
                Path real = realPathOfExisting(request.target().path());
                if (!real.startsWith(root)) {
                    throw new OpenDeniedException(request.referrer().toString(), "refusing to open "
                            + describe(request) + ": it resolves to " + real + ", outside " + root);
                }
            }

            @Override
            public boolean allowsProbing(OpenRequest request) {
                return false;
            }

            @Override
            public String toString() {
                return "OpenGate.confinedTo(" + directory + ")";
            }
        };
    }

    private static String describe(OpenRequest request) {
        String what = switch (request.purpose()) {
            case BACKING_FILE -> "backing file";
            case DATA_FILE -> "data file";
            case EXTENT_FILE -> "extent file";
        };
        return what + " '" + request.storedName() + "'";
    }

    /**
     * The real path of {@code path}: symbolic links and {@code ..} resolved for the longest existing
     * prefix, the rest appended normalised (a file that does not exist yet cannot be a link).
     */
    private static Path realPathOfExisting(Path path) throws IOException {
        Path absolute = path.toAbsolutePath().normalize();
        Path existing = absolute;
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return absolute;
        }
        return existing.toRealPath().resolve(existing.relativize(absolute)).normalize();
    }
}
