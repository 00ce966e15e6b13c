package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code imago measure} against {@code qemu-img measure} on the same sources and options: the same output (human
 * and JSON, with the bitmaps line where qemu-img prints it), messages (program name aside) and exit status.
 */
class MeasureDifferentialTest {
    @TempDir
    Path dir;

    /** src.qcow2: data, a zero cluster, a compressed cluster and two bitmaps; src.raw: a sparse raw file. */
    @BeforeEach
    void sources() {
        Path qemuImg = Qemu.img();
        Path qemuIo = Qemu.io();
        Qemu.ok(dir, qemuImg, "create", "-q", "-f", "qcow2", "src.qcow2", "100M");
        Qemu.ok(dir, qemuImg, "bitmap", "--add", "src.qcow2", "b1");
        Qemu.ok(dir, qemuImg, "bitmap", "--add", "-g", "512", "src.qcow2", "a-longer-bitmap-name");
        Qemu.ok(dir, qemuIo, "-c", "write -P 1 0 3M", "-c", "write -z 5M 64k", "-c", "write -c 10M 64k",
                "-c", "write -P 2 70000k 4k", "src.qcow2");
        Qemu.ok(dir, qemuImg, "create", "-q", "-f", "raw", "src.raw", "33M");
        Qemu.ok(dir, qemuIo, "-f", "raw", "-c", "write -P 3 1M 100k", "-c", "write -P 4 20M 1k", "src.raw");
        Qemu.ok(dir, qemuImg, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "10M");
    }

    @ParameterizedTest
    @ValueSource(strings = {"--size 1G -O qcow2", "--size 1G -O qcow2 --output=json", "--size 1000",
        "--size 1000 -O qcow2", "--size 1G -O qcow2 -o cluster_size=512,refcount_bits=64",
        "--size 100T -O qcow2 -o cluster_size=2M,extended_l2=on", "--size 1G -O qcow2 -o cluster_size=64k,refcount_bits=1",
        "-O qcow2 src.qcow2", "-O qcow2 --output=json src.qcow2", "-O qcow2 -o cluster_size=4k src.qcow2",
        "-O qcow2 -o compat=0.10 src.qcow2", "-O qcow2 -o preallocation=full src.qcow2",
        "-O qcow2 -o preallocation=metadata src.qcow2", "-O qcow2 -o backing_file=x src.qcow2",
        "-O qcow2 -o extended_l2=on src.raw", "-O qcow2 src.raw", "-f raw -O qcow2 --output=json src.raw",
        "-O qcow2 v2.qcow2", "src.qcow2", "src.raw", "-O raw --output=json src.qcow2",
        "", "--size 1G src.qcow2", "-f qcow2", "--size -1 -O qcow2", "--size 1G -O qcow2 -o cluster_size=100",
        "--size 1G -O qcow2 -o cluster_size=512,extended_l2=on", "--size 1G -O qcow2 -o compat=0.10,refcount_bits=8",
        "--size 1G --output=xml", "--size 1G -O vmdk", "-O vpc src.raw", "--size 1G -O cloop", "-O bochs src.raw",
        "--size 1G -O qcow2 -o bad=1", "--size 1G -O raw -o bad=1", "-O vdi -o static=maybe src.qcow2",
        "--size 1G -O parallels -o cluster_size=x", "--size 1G -O qed -o table_size=99999999999999999999",
        "-O foo nope.raw",
        // measure's own reading of qcow2's options (compat by number only; compression, lazy refcounts, data files
        // and encryption formats other than luks not looked at), in its order
        "--size 1M -O qcow2 -o compat=foo", "--size 1M -O qcow2 -o compat=v2,refcount_bits=8",
        "--size 1M -O qcow2 -o compat=v3", "--size 1M -O qcow2 -o compression_type=foo",
        "--size 1M -O qcow2 -o compat=0.10,lazy_refcounts=on,extended_l2=on", "--size 1M -O qcow2 -o data_file_raw=on",
        "--size 1M -O qcow2 -o preallocation=foo", "--size 1M -O qcow2 -o preallocation=foo,refcount_bits=3",
        "--size 1M -O qcow2 -o encrypt.format=foo", "--size 1M -O qcow2 -o encryption=on",
        "--size 1M -O qcow2 -o encrypt.format=luks", "--size 1M -O qcow2 -o cluster_size=4k,extended_l2=on,compat=foo",
        "--size 1M -O qcow2 -o refcount_bits=3,compat=foo", "--size 1M -O qcow2 -o preallocation=falloc",
        "--size 1M -O raw -o preallocation=foo"})
    void printsWhatQemuImgPrints(String line) {
        List<String> args = line.isEmpty() ? List.of() : List.of(line.split(" "));
        List<Object> q = new ArrayList<>(List.of(Qemu.img(), "measure"));
        q.addAll(args);
        Qemu.Output theirs = Qemu.run(dir, q.toArray());
        List<String> m = new ArrayList<>(List.of("measure"));
        for (String a : args) {
            m.add(a.startsWith("src.") || a.startsWith("v2.") ? dir.resolve(a).toString() : a);
        }
        Run.Result ours = imago(m.toArray(String[]::new));
        assertEquals(theirs.status(), ours.status(), line + ": " + theirs.err() + " / " + ours.err());
        assertEquals(theirs.out(), ours.out(), line);
        assertEquals(theirs.err().replace("qemu-img: ", ""), ours.err().replace("imago: ", ""), line);
    }
}
