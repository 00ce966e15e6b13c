package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.UnaryOperator;

/**
 * The steps the command tests of encrypted images against qemu-img share (luks, and qcow2 with
 * {@code encrypt.format=luks}): the passphrase as {@code --object secret,id=sec0,...} and the image as
 * {@code --image-opts driver=FORMAT,KEY_OPTION=sec0,file.filename=FILE}, given alike to both tools.
 *
 * @param dir where the tools run
 * @param driver the {@code driver} of the image options
 * @param keyOption the image option naming the secret ({@code key-secret}, {@code encrypt.key-secret})
 */
record EncryptedCliDifferential(Path dir, String driver, String keyOption) {
    /** The passphrase {@code abc} under the id {@code sec0}. */
    static final String SECRET = "secret,id=sec0,data=abc";

    /** The {@code --image-opts} value that opens {@code f} with {@link #SECRET}. */
    String opts(Path f) {
        return "driver=" + driver + "," + keyOption + "=sec0,file.filename=" + f;
    }

    /**
     * Writes two runs into {@code f} through {@code imago io} and reads them back through qemu-io; then imago's
     * {@code convert -O raw} (given the passphrase as {@code imagoSecret}, which may be another of qemu's forms of
     * it) writes qemu-img's bytes, and {@code info} (JSON and human, by file name and by {@code --image-opts}) and
     * {@code map --output=json} print what qemu-img prints, once {@code runToRun} has taken out what may differ between two runs (disk sizes).
     */
    void assertWritesConvertsInfoAndMapAsQemuImg(Path f, String imagoSecret, UnaryOperator<String> runToRun)
            throws IOException {
        imago("io", "--object", SECRET, "--image-opts", opts(f), "-c", "write -P 0x5a 1000 70000", "-c",
                "write -P 0x33 1040000 8576").ok();
        Qemu.ok(dir, Qemu.io(), "--object", SECRET, "--image-opts", opts(f), "-c", "read -P 0x5a 1000 70000", "-c",
                "read -P 0x33 1040000 8576");
        Path mine = dir.resolve("mine.raw");
        imago("convert", "--object", imagoSecret, "--image-opts", opts(f), "-O", "raw", mine.toString()).ok();
        assertArrayEquals(Qemu.convertToRaw(dir, "--object", SECRET, "--image-opts", opts(f)),
                Files.readAllBytes(mine));
        assertEquals(runToRun.apply(Qemu.ok(dir, Qemu.img(), "info", "--output=json", f).strip()),
                runToRun.apply(imago("info", "--output=json", f.toString()).ok().out().strip()));
        assertEquals(runToRun.apply(Qemu.ok(dir, Qemu.img(), "info", f)),
                runToRun.apply(imago("info", f.toString()).ok().out()));
        // opened by options that name the key, qemu-img names the image by its options (json:{...}); the format
        // probed or given, the options in any order; without the key, by the file's name
        for (String o : new String[] {opts(f), "file.filename=" + f + "," + keyOption + "=sec0",
            "driver=" + driver + ",file.filename=" + f}) {
            for (String output : new String[] {"--output=json", "--output=human"}) {
                assertEquals(runToRun.apply(Qemu.ok(dir, Qemu.img(), "info", output, "--object", SECRET,
                        "--image-opts", o)), runToRun.apply(imago("info", output, "--object", SECRET, "--image-opts", o)
                        .ok().out()), o + " " + output);
            }
        }
        assertEquals(Qemu.ok(dir, Qemu.img(), "map", "--output=json", "--object", SECRET, "--image-opts", opts(f)),
                imago("map", "--output=json", "--object", SECRET, "--image-opts", opts(f)).ok().out());
    }

    /** {@code qemu-img compare} finds {@code f} equal to the raw file {@code raw}. */
    void assertQemuImgReads(Path f, Path raw, String what) {
        Qemu.Output cmp = Qemu.run(dir, Qemu.img(), "compare", "--object", SECRET, "--image-opts", opts(f),
                "driver=raw,file.filename=" + raw);
        assertEquals(0, cmp.status(), () -> what + cmp.out() + cmp.err());
    }

    /** {@code qemu-img check} of {@code f} returns 0. */
    void assertQemuImgChecksClean(Path f) {
        Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", "--object", SECRET, "--image-opts", opts(f));
        assertEquals(0, check.status(), () -> check.out() + check.err());
    }
}
