package imago.cli;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** The checkout's {@code ./imago} launcher, for the tests that run it as a user does (after {@code package}). */
final class Launcher {

    private Launcher() {
    }

    /** The checkout: {@code IMAGO_REPO_ROOT}, else the parent of the module directory the tests run in. */
    static Path checkout() {
        String root = System.getenv("IMAGO_REPO_ROOT");
        return root != null ? Path.of(root) : Path.of("").toAbsolutePath().getParent();
    }

    /** The launcher, asserting that it runs the built module path (it would build the reactor itself otherwise). */
    static Path find() {
        Path base = checkout();
        Path launcher = base.resolve("imago");
        assertTrue(Files.isExecutable(launcher), "no launcher at " + launcher);
        assertTrue(Files.exists(base.resolve("imago-cli/target/lib/.complete")), "imago-cli/target/lib is incomplete");
        return launcher;
    }
}
