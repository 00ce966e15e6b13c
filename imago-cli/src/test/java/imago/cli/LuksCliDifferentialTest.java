package imago.cli;

import static imago.cli.Run.imago;
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
 * LUKS through the command, against qemu-img on the same files: secrets as {@code --object secret,...} (data, file,
 * base64), {@code -o key-secret=ID} for create and {@code convert -O luks}, {@code --image-opts
 * driver=luks,key-secret=ID,file.filename=F} for the commands that open; info, map and the converted bytes equal
 * qemu-img's.
 */
class LuksCliDifferentialTest {
    private static final String SECRET = EncryptedCliDifferential.SECRET;

    @TempDir
    Path dir;

    private EncryptedCliDifferential luks() {
        return new EncryptedCliDifferential(dir, "luks", "key-secret");
    }

    private String opts(Path f) {
        return luks().opts(f);
    }

    @Test
    void createWriteConvertInfoAndMapAsQemuImg() throws IOException {
        Path f = dir.resolve("a.luks");
        String created = imago("create", "-f", "luks", "--object", SECRET, "-o", "key-secret=sec0,iter-time=10",
                f.toString(), "1M").ok().out();
        assertEquals("Formatting '" + f + "', fmt=luks size=1048576 key-secret=sec0 iter-time=10\n", created);
        luks().assertWritesConvertsInfoAndMapAsQemuImg(f, "secret,id=sec0,data=YWJj,format=base64", s -> s);
    }

    @Test
    void measureAndHumanMapAsQemuImg() throws IOException {
        // one variant: qemu-img measure calibrates PBKDF2 as create does (seconds on a busy machine); its luks measure
        // does not read preallocation, whatever the value
        for (String o : new String[] {"key-secret=sec0,cipher-alg=aes-128,preallocation=foo"}) {
            assertEquals(qemuMeasure(o), imago("measure", "--output=json", "--object", SECRET, "-O", "luks", "-o",
                    o, "--size", "1G").ok().out().strip(), o);
        }
        String refused = imago("measure", "-O", "luks", "--size", "1G").failsWithOneLine();
        assertTrue(refused.contains("Parameter 'key-secret' is required for cipher"), refused);
        Path f = dir.resolve("m.luks");
        imago("create", "-q", "-f", "luks", "--object", SECRET, "-o", "key-secret=sec0,iter-time=10", f.toString(),
                "64K").ok();
        Qemu.Output theirs = Qemu.run(dir, Qemu.img(), "map", "--object", SECRET, "--image-opts", opts(f));
        Run.Result mine = imago("map", "--object", SECRET, "--image-opts", opts(f));
        assertEquals(theirs.status(), mine.status());
        assertEquals(theirs.out(), mine.out());
        assertTrue(mine.err().contains("File contains external, encrypted or compressed clusters."), mine.err());
    }

    /**
     * Without a key, qemu-img shows the header ({@code info}, which opens for metadata only) and refuses every
     * command that opens for data at the open, before printing anything.
     */
    @Test
    void withoutAKeyOnlyInfoOpensAsQemuImg() throws IOException {
        Path f = dir.resolve("k.luks");
        imago("create", "-q", "-f", "luks", "--object", SECRET, "-o", "key-secret=sec0,iter-time=10", f.toString(),
                "64K").ok();
        String image = f.toString();
        String[][] lines = {{"info", "--output=json", image}, {"map", image}, {"map", "--output=json", image},
            {"check", image}, {"compare", image, image}, {"convert", "-O", "raw", image, dir.resolve("o.raw").toString()}};
        for (String[] line : lines) {
            String what = String.join(" ", line);
            Qemu.Output theirs = Qemu.runImg(dir, line);
            Run.Result mine = imago(line);
            assertEquals(theirs.status(), mine.status(), what);
            assertEquals(theirs.err().replace("qemu-img: ", "imago: "), mine.err(), what);
            if (theirs.status() == 0) {
                assertEquals(theirs.out().replaceAll("\"actual-size\": \\d+", ""),
                        mine.out().replaceAll("\"actual-size\": \\d+", ""), what);
            } else {
                assertEquals("", mine.out(), what);
            }
        }
    }

    /** {@code qemu-img measure -O luks}, which calibrates PBKDF2 as create does ({@link Qemu#okDerivingKey}). */
    private String qemuMeasure(String options) {
        return Qemu.okDerivingKey(dir, Qemu.img(), "measure", "--output=json", "--object", SECRET, "-O", "luks", "-o",
                options, "--size", "1G").strip();
    }

    /**
     * The source's zeroes are written too: a new LUKS image's sectors decrypt to noise, so convert cannot leave them
     * unwritten as it does for formats whose new images read as zeroes (qemu-img's has_zero_init).
     */
    @Test
    void convertToLuksWithASecretFile() throws IOException {
        Path src = dir.resolve("src.raw");
        byte[] data = new byte[2 << 20];
        byte[] random = new byte[300_000];
        new Random(5).nextBytes(random);
        System.arraycopy(random, 0, data, 0, 100_000); // then zeroes, data again, zeroes to the end
        System.arraycopy(random, 100_000, data, 1 << 20, 200_000);
        Files.write(src, data);
        Path key = dir.resolve("key");
        Files.writeString(key, "abc");
        Path out = dir.resolve("out.luks");
        imago("convert", "--object", "secret,id=sec0,file=" + key, "-O", "luks", "-o",
                "key-secret=sec0,iter-time=10,cipher-mode=cbc,ivgen-alg=essiv,cipher-alg=aes-128", src.toString(),
                out.toString()).ok();
        luks().assertQemuImgReads(out, src, "");
    }

    @Test
    void oneClearLineForAWrongPassphraseOrAMissingSecret() throws IOException {
        Path f = dir.resolve("b.luks");
        imago("create", "-q", "-f", "luks", "--object", SECRET, "-o", "key-secret=sec0,iter-time=10", f.toString(),
                "64K").ok();
        String wrong = imago("io", "--object", "secret,id=sec0,data=abd", "--image-opts", opts(f), "-c", "read 0 512")
                .failsWithOneLine();
        assertTrue(wrong.contains("Invalid password, cannot unlock any keyslot"), wrong);
        assertTrue(!wrong.contains("abd"), wrong);
        String missing = imago("map", "--image-opts", opts(f)).failsWithOneLine();
        assertTrue(missing.contains("No secret with id 'sec0'"), missing);
        String noKey = imago("convert", "-O", "raw", f.toString(), dir.resolve("x.raw").toString()).failsWithOneLine();
        assertTrue(noKey.contains("Parameter 'key-secret' is required for cipher"), noKey);
        String badSecret = imago("info", "--object", "secret,id=s1,data=x,keyid=k", f.toString()).failsWithOneLine();
        assertTrue(badSecret.contains("encrypted secrets are not supported"), badSecret);
    }
}
