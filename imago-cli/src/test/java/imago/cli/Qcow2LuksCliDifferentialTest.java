package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
    private static final String SECRET = EncryptedCliDifferential.SECRET;

    @TempDir
    Path dir;

    private EncryptedCliDifferential qcow2() {
        return new EncryptedCliDifferential(dir, "qcow2", "encrypt.key-secret");
    }

    @Test
    void createWriteConvertInfoAndMapAsQemuImg() throws IOException {
        Path f = dir.resolve("a.qcow2");
        String created = imago("create", "-f", "qcow2", "--object", SECRET, "-o",
                "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", f.toString(), "1M").ok().out();
        assertEquals("Formatting '" + f + "', fmt=qcow2 encrypt.format=luks encrypt.key-secret=sec0 "
                + "encrypt.iter-time=10 cluster_size=65536 extended_l2=off compression_type=zlib size=1048576 "
                + "lazy_refcounts=off refcount_bits=16\n", created);
        // the file's size on disk differs between the two tools' runs
        qcow2().assertWritesConvertsInfoAndMapAsQemuImg(f, SECRET,
                s -> s.replaceAll("\"actual-size\": \\d+", "").replaceAll("disk size: .*", ""));
        qcow2().assertQemuImgChecksClean(f);
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
        qcow2().assertQemuImgReads(out, src, "");
        qcow2().assertQemuImgChecksClean(out);
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
            qcow2().assertQemuImgReads(out, src, mode + ": ");
        }
    }
}
