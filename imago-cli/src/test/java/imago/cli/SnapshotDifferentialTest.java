package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code snapshot -c/-d/-a/-l} against qemu-img 7.2: the same command on two copies of one image, one changed by
 * qemu-img and one by imago, must give the same exit status, output and messages, and leave images that list the
 * same snapshots (dates aside), pass {@code qemu-img check} and hold the same bytes.
 */
class SnapshotDifferentialTest {
    @TempDir
    Path dir;

    private Path theirs;
    private Path ours;

    @BeforeEach
    void dirs() throws IOException {
        Qemu.require();
        theirs = Files.createDirectories(dir.resolve("qemu"));
        ours = Files.createDirectories(dir.resolve("imago"));
    }

    /** The same image in both directories: qemu-img create with OPTIONS, then qemu-io writes. */
    private String image(String name, String format, String options, String... writes) {
        for (Path d : List.of(theirs, ours)) {
            Path f = d.resolve(name);
            List<Object> cmd = new ArrayList<>(List.of(Qemu.img(), "create", "-q", "-f", format));
            if (!options.isEmpty()) {
                cmd.addAll(List.of("-o", options));
            }
            cmd.addAll(List.of(f, "4M"));
            Qemu.ok(dir, cmd.toArray());
            io(f, format, writes);
        }
        return name;
    }

    private void io(Path f, String format, String... writes) {
        if (writes.length > 0) {
            List<Object> cmd = new ArrayList<>(List.of(Qemu.io(), "-f", format));
            for (String w : writes) {
                cmd.add("-c");
                cmd.add(w);
            }
            cmd.add(f);
            Qemu.ok(dir, cmd.toArray());
        }
    }

    /** The same qemu-io writes on both copies. */
    private void bothWrite(String name, String... writes) {
        io(theirs.resolve(name), "qcow2", writes);
        io(ours.resolve(name), "qcow2", writes);
    }

    /** {@code snapshot ARGS FILE} by both: same status, output and messages; returns the status. */
    private int same(String name, String... args) {
        List<Object> cmd = new ArrayList<>(List.of(Qemu.img(), "snapshot"));
        cmd.addAll(List.of(args));
        cmd.add(theirs.resolve(name));
        Qemu.Output q = Qemu.run(dir, cmd.toArray());
        List<String> ourArgs = new ArrayList<>(List.of("snapshot"));
        ourArgs.addAll(List.of(args));
        ourArgs.add(ours.resolve(name).toString());
        Run.Result i = imago(ourArgs.toArray(String[]::new));
        String what = String.join(" ", ourArgs);
        assertEquals(q.status(), i.status(), () -> what + "\nqemu: " + q.err() + "\nimago: " + i.err());
        assertEquals(normalize(q.out()), normalize(i.out()), what);
        assertEquals(normalize(q.err()).replace("qemu-img: ", "imago: "), normalize(i.err()), what);
        return q.status();
    }

    /** Paths to the imago copy; creation times (which differ between the runs) replaced. */
    private String normalize(String s) {
        return s.replace(theirs.toString(), ours.toString())
                .replaceAll("\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d", "DATE");
    }

    /** Both copies list the same snapshots, check clean and hold the same bytes, now and in every snapshot. */
    private void sameImages(String name) {
        Path q = theirs.resolve(name);
        Path i = ours.resolve(name);
        same(name, "-l");
        for (Path f : List.of(q, i)) {
            Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", f);
            assertEquals(0, check.status(), () -> f + ": " + check.out() + check.err());
        }
        Qemu.ok(dir, Qemu.img(), "compare", "-f", "qcow2", "-F", "qcow2", q, i);
        String list = Qemu.ok(dir, Qemu.img(), "snapshot", "-l", q);
        for (String line : list.lines().skip(2).toList()) {
            String id = line.trim().split("\\s+")[0];
            Path a = dir.resolve("a.raw");
            Path b = dir.resolve("b.raw");
            Qemu.ok(dir, Qemu.img(), "convert", "-l", "snapshot.id=" + id, "-O", "raw", q, a);
            Qemu.ok(dir, Qemu.img(), "convert", "-l", "snapshot.id=" + id, "-O", "raw", i, b);
            Qemu.ok(dir, Qemu.img(), "compare", "-f", "raw", "-F", "raw", a, b);
        }
    }

    /** With persistent bitmaps: create and delete work and keep them; apply is refused, as in qemu-img. */
    @Test
    void withBitmapsLikeQemu() {
        String f = image("b.qcow2", "qcow2", "cluster_size=4096", "write -P 1 0 300k");
        for (Path d : List.of(theirs, ours)) {
            Qemu.ok(dir, Qemu.img(), "bitmap", "--add", "-g", "512", d.resolve(f), "b0");
        }
        bothWrite(f, "write -P 2 100k 8k");
        assertEquals(0, same(f, "-c", "s1"));
        bothWrite(f, "write -P 3 200k 8k");
        assertEquals(1, same(f, "-a", "s1"));
        assertEquals(0, same(f, "-c", "s2"));
        assertEquals(0, same(f, "-d", "s1"));
        sameImages(f);
        String info = "(?s).*(bitmaps:.*)refcount bits.*";
        assertEquals(Qemu.ok(dir, Qemu.img(), "info", theirs.resolve(f)).replaceAll(info, "$1"),
                Qemu.ok(dir, Qemu.img(), "info", ours.resolve(f)).replaceAll(info, "$1"));
    }

    @Test
    void createApplyDeleteLikeQemu() {
        String f = image("x.qcow2", "qcow2", "cluster_size=4096", "write -P 1 0 300k", "write -c -P 2 1M 64k",
                "write -z 2M 64k");
        assertEquals(0, same(f, "-c", "s1"));
        sameImages(f);
        bothWrite(f, "write -P 3 100k 100k", "write -P 4 3M 10k");
        // names need not be unique
        assertEquals(0, same(f, "-c", "s1"));
        assertEquals(0, same(f, "-q", "-c", "s2"));
        sameImages(f);
        bothWrite(f, "write -P 5 0 8k");
        // -a: by id, then by name
        assertEquals(0, same(f, "-a", "2"));
        sameImages(f);
        assertEquals(0, same(f, "-a", "s1"));
        sameImages(f);
        // -d: by name only (the first one)
        assertEquals(1, same(f, "-d", "3"));
        assertEquals(0, same(f, "-d", "s1"));
        sameImages(f);
        assertEquals(1, same(f, "-d", "nope"));
        assertEquals(1, same(f, "-a", "nope"));
        assertEquals(1, same(f, "-U", "-c", "s3"));
        assertEquals(0, same(f, "-d", "s1"));
        assertEquals(0, same(f, "-d", "s2"));
        sameImages(f);
        assertEquals(0, same(f, "-c", ""));
        // qemu-img keeps the first 255 bytes of a name
        assertEquals(0, same(f, "-c", "n".repeat(300)));
        sameImages(f);
        assertEquals(0, same(f, "-d", "n".repeat(255)));
        sameImages(f);
    }

    @Test
    void oneBitRefcountsFailAsInQemu() {
        String f = image("one.qcow2", "qcow2", "refcount_bits=1", "write -P 1 0 64k");
        assertEquals(1, same(f, "-c", "s"));
        // qemu leaks the new L1 table here; imago changes nothing
        Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", ours.resolve(f));
        assertEquals(0, check.status(), check.out());
        String empty = image("empty.qcow2", "qcow2", "refcount_bits=1");
        assertEquals(0, same(empty, "-c", "s"));
        sameImages(empty);
    }

    @Test
    void imagesWithAnExternalDataFileHaveNoSnapshots() {
        String f = "df.qcow2";
        for (Path d : List.of(theirs, ours)) {
            Qemu.ok(d, Qemu.img(), "create", "-q", "-f", "qcow2", "-o", "data_file=" + d.resolve("df.data"),
                    d.resolve(f), "4M");
        }
        bothWrite(f, "write -P 1 0 64k");
        assertEquals(1, same(f, "-c", "s"));
        assertEquals(0, same(f, "-l"));
    }

    @Test
    void rawHasNoSnapshots() {
        String f = image("r.img", "raw", "");
        assertEquals(1, same(f, "-c", "x"));
        assertEquals(1, same(f, "-d", "x"));
        assertEquals(1, same(f, "-a", "x"));
        assertEquals(0, same(f, "-l"));
        assertTrue(imago("snapshot", "-l", ours.resolve(f).toString()).ok().out().isEmpty());
    }
}
