package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
    void rawImagesHaveNoSnapshotsToChange() {
        String f = raw();
        assertEquals("imago: Could not create snapshot 's1': -95 (Operation not supported)",
                imago("snapshot", "-f", "raw", "-c", "s1", f).failsWithOneLine());
        assertEquals("imago: Could not delete snapshot 's1': snapshot not found",
                imago("snapshot", "-f", "raw", "-d", "s1", f).failsWithOneLine());
        assertEquals("imago: Could not apply snapshot 's1': Block driver does not support snapshots",
                imago("snapshot", "-f", "raw", "-a", "s1", f).failsWithOneLine());
    }

    @Test
    void createListApplyDelete() {
        String f = dir.resolve("x.qcow2").toString();
        imago("create", "-q", "-f", "qcow2", f, "1M").ok();
        assertEquals("", imago("snapshot", "-c", "one", f).ok().out());
        imago("io", "-c", "write -P 7 0 64k", f).ok();
        assertEquals("", imago("snapshot", "-c", "two", f).ok().out());
        String list = imago("snapshot", "-l", f).ok().out();
        assertTrue(list.lines().skip(2).map(l -> l.split("\\s+")[1]).toList().equals(java.util.List.of("one", "two")),
                list);
        imago("snapshot", "-a", "one", f).ok();
        assertTrue(imago("io", "-c", "read -P 0 0 64k", f).ok().out().contains("read 65536/65536"));
        imago("snapshot", "-a", "2", f).ok();
        assertTrue(imago("io", "-c", "read -P 7 0 64k", f).ok().out().contains("read 65536/65536"));
        imago("snapshot", "-d", "one", f).ok();
        assertEquals("imago: Could not delete snapshot 'one': snapshot not found",
                imago("snapshot", "-d", "one", f).failsWithOneLine());
        assertEquals(3, imago("snapshot", "-l", f).ok().out().lines().count());
    }

    @Test
    void forceShareOnlyLists() {
        String f = raw();
        assertEquals("imago: Could not open '" + f + "': force-share=on can only be used with read-only images",
                imago("snapshot", "-U", "-c", "s", f).failsWithOneLine());
    }

    @Test
    void actionsDoNotMix() {
        String f = raw();
        Run.Result r = imago("snapshot", "-l", "-c", "s1", f);
        assertEquals(1, r.status());
        assertEquals("imago: Cannot mix '-l', '-a', '-c', '-d'\nTry 'imago --help' for more information\n", r.err());
    }

    @Test
    void aMissingFileIsOneLine() {
        String missing = dir.resolve("missing.img").toString();
        assertEquals("imago: Could not open '" + missing + "': Could not open '" + missing
                + "': No such file or directory",
                imago("snapshot", "-l", missing).failsWithOneLine());
    }
}
