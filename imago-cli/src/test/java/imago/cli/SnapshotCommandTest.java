package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SnapshotCommandTest {
    @TempDir
    Path dir;

    private String raw() {
        String f = dir.resolve("x.img").toString();
        imago("create", "-q", "-f", "raw", f, "1M").ok();
        return f;
    }

    @Test
    void listingAnImageWithoutSnapshotsPrintsNothing() {
        String f = raw();
        Run.Result r = imago("snapshot", "-l", f).ok();
        assertEquals("", r.out());
        assertEquals("", r.err());
        assertEquals("", imago("snapshot", "-l", "-f", "raw", f).ok().out());
        assertEquals("", imago("snapshot", f).ok().out());
    }

    @Test
    void changingSnapshotsIsRefusedForNow() {
        String f = raw();
        assertEquals("imago: " + f + ": creating snapshots is not supported yet",
                imago("snapshot", "-c", "s1", f).failsWithOneLine());
        assertEquals("imago: " + f + ": deleting snapshots is not supported yet",
                imago("snapshot", "-d", "s1", f).failsWithOneLine());
        assertEquals("imago: " + f + ": applying snapshots is not supported yet",
                imago("snapshot", "-a", "s1", f).failsWithOneLine());
    }

    @Test
    void actionsDoNotMix() {
        String f = raw();
        assertEquals("imago: Cannot mix '-l', '-a', '-c', '-d' (try 'imago snapshot --help')",
                imago("snapshot", "-l", "-c", "s1", f).failsWithOneLine());
    }

    @Test
    void aMissingFileIsOneLine() {
        String missing = dir.resolve("missing.img").toString();
        assertEquals("imago: " + missing + ": Could not open '" + missing + "': No such file or directory",
                imago("snapshot", "-l", missing).failsWithOneLine());
    }
}
