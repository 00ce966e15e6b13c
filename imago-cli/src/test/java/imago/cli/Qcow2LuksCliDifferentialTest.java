package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * qcow2 {@code encrypt.format=luks} through the command, against qemu-img on the same files: create's formatting
 * line, {@code info} (human and JSON, the {@code encrypt} fields included), {@code map}, {@code convert} both ways
 * with {@code --object secret} and {@code --image-opts driver=qcow2,encrypt.key-secret=ID,file.filename=F}.
 */
class Qcow2LuksCliDifferentialTest {
    private static final String SECRET = "secret,id=sec0,data=abc";

    @TempDir
    Path dir;

    private static String opts(Path f) {
        return "driver=qcow2,encrypt.key-secret=sec0,file.filename=" + f;
    }

    @Test
    void createWriteConvertInfoAndMapAsQemuImg() throws IOException {
        Path f = dir.resolve("a.qcow2");
        String created = imago("create", "-f", "qcow2", "--object", SECRET, "-o",
                "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", f.toString(), "1M").ok().out();
        assertEquals("Formatting '" + f + "', fmt=qcow2 encrypt.format=luks encrypt.key-secret=sec0 "
                + "encrypt.iter-time=10 cluster_size=65536 extended_l2=off compression_type=zlib size=1048576 "
                + "lazy_refcounts=off refcount_bits=16\n", created);
        imago("io", "--object", SECRET, "--image-opts", opts(f), "-c", "write -P 0x5a 1000 70000", "-c",
                "write -P 0x33 1040000 8576").ok();
        Qemu.ok(dir, Qemu.io(), "--object", SECRET, "--image-opts", opts(f), "-c", "read -P 0x5a 1000 70000", "-c",
                "read -P 0x33 1040000 8576");
        Path mine = dir.resolve("mine.raw");
        Path theirs = dir.resolve("theirs.raw");
        imago("convert", "--object", SECRET, "--image-opts", opts(f), "-O", "raw", mine.toString()).ok();
        Qemu.ok(dir, Qemu.img(), "convert", "--object", SECRET, "--image-opts", opts(f), "-O", "raw", theirs);
        assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(mine));
        assertEquals(Qemu.ok(dir, Qemu.img(), "info", "--output=json", f).strip()
                        .replaceAll("\"actual-size\": \\d+", ""),
                imago("info", "--output=json", f.toString()).ok().out().strip().replaceAll("\"actual-size\": \\d+", ""));
        assertEquals(Qemu.ok(dir, Qemu.img(), "info", f).replaceAll("disk size: .*", ""),
                imago("info", f.toString()).ok().out().replaceAll("disk size: .*", ""));
        assertEquals(Qemu.ok(dir, Qemu.img(), "map", "--output=json", "--object", SECRET, "--image-opts", opts(f)),
                imago("map", "--output=json", "--object", SECRET, "--image-opts", opts(f)).ok().out());
        Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", "--object", SECRET, "--image-opts", opts(f));
        assertEquals(0, check.status(), check.out() + check.err());
    }

    @Test
    void convertToEncryptedQcow2() throws IOException {
        Path src = dir.resolve("src.raw");
        byte[] data = new byte[2 << 20];
        new Random(5).nextBytes(data);
        Files.write(src, data);
        Path out = dir.resolve("out.qcow2");
        imago("convert", "--object", SECRET, "-O", "qcow2", "-o",
                "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,encrypt.cipher-alg=aes-128",
                src.toString(), out.toString()).ok();
        Qemu.Output cmp = Qemu.run(dir, Qemu.img(), "compare", "--object", SECRET, "--image-opts", opts(out),
                "driver=raw,file.filename=" + src);
        assertEquals(0, cmp.status(), cmp.out() + cmp.err());
        Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", "--object", SECRET, "--image-opts", opts(out));
        assertEquals(0, check.status(), check.out() + check.err());
        String compressed = imago("convert", "-c", "--object", SECRET, "-O", "qcow2", "-o",
                "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", src.toString(),
                dir.resolve("c.qcow2").toString()).failsWithOneLine();
        assertTrue(compressed.contains("Compression and encryption not supported at the same time"), compressed);
    }

    /**
     * A preallocated encrypted target is not zeroed: its clusters decrypt the file's zeroes to noise (QEMU's
     * qcow2_has_zero_init says no for it), so convert writes the source's zeroes instead of skipping them.
     */
    @Test
    void convertToPreallocatedEncryptedQcow2WritesTheZeroes() throws IOException {
        Path src = dir.resolve("sparse.raw");
        byte[] data = new byte[1 << 20];
        new Random(6).nextBytes(data);
        java.util.Arrays.fill(data, 4096, data.length - 4096, (byte) 0);
        Files.write(src, data);
        for (String mode : new String[] {"metadata", "falloc"}) {
            Path out = dir.resolve("p-" + mode + ".qcow2");
            imago("convert", "--object", SECRET, "-O", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=sec0,"
                    + "encrypt.iter-time=10,preallocation=" + mode, src.toString(), out.toString()).ok();
            Qemu.Output cmp = Qemu.run(dir, Qemu.img(), "compare", "--object", SECRET, "--image-opts", opts(out),
                    "driver=raw,file.filename=" + src);
            assertEquals(0, cmp.status(), mode + ": " + cmp.out() + cmp.err());
        }
    }
}
