package imago.cli.command;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The check qemu-img's file driver makes before a format opens a file, in its words: a missing file or a directory is
 * refused before the library tries.
 */
final class RegularFileCheck {
    private RegularFileCheck() {
    }

    /**
     * Refuses a missing file or a directory before the library tries, as QEMU's file driver words it for an image
     * opened read-only.
     *
     * @throws CliException if {@code typed} is missing or a directory
     */
    static void checkRegularFile(String typed) {
        checkRegularFile(typed, false);
    }

    /**
     * Refuses a missing file or a directory before the library tries, as QEMU's file driver words it: a directory
     * opened for writing fails in the open itself, one opened read-only in the driver's check of the file's type.
     *
     * @throws CliException if {@code typed} is missing or a directory
     */
    static void checkRegularFile(String typed, boolean writable) {
        Path path = Path.of(typed);
        if (Files.isDirectory(path)) {
            throw new CliException(null, "Could not open '" + typed + "': " + (writable
                    ? "Could not open '" + typed + "': Is a directory"
                    : "'file' driver requires '" + typed + "' to be a regular file"));
        }
        if (!Files.exists(path)) {
            throw new CliException(null, "Could not open '" + typed + "': Could not open '" + typed
                    + "': No such file or directory");
        }
    }
}
