package imago.cli;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The reasons qemu-img 7.2 gives for the common damaged inputs of qcow2, vpc, vhdx and vmdk (a foreign file opened
 * as the format, a bad magic, version, checksum or signature, a broken vmdk descriptor or a missing extent, a missing
 * external data file): imago's drivers say more, and the commands print qemu-img's words, with its status. {@code info}
 * reads no data, so a missing data file does not keep it from showing the image, as in qemu-img.
 */
class DamagedImagesDifferentialTest {
    @TempDir
    static Path dir;

    private static CliDifferential both;

    /** Each damaged file, made from what qemu-img creates, with the damage its name says. */
    @BeforeAll
    static void images() throws IOException {
        Path img = Qemu.img();
        Qemu.ok(dir, img, "create", "-q", "-f", "raw", "zero.raw", "1M");
        // foreign files opened as vmdk: larger than a descriptor may be, not text, text of no descriptor lines
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-o", "preallocation=full", "big.qcow2", "2M");
        Files.write(dir.resolve("binary.bin"), new byte[] {(byte) 0xff, (byte) 0xfe, 0, 1, (byte) 0x80, 10, 10, 10});
        Files.writeString(dir.resolve("text.txt"), "hello\n", StandardCharsets.US_ASCII);
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "version4.qcow2", "1M");
        poke("version4.qcow2", 4, 0, 0, 0, 4);
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "cluster8.qcow2", "1M");
        poke("cluster8.qcow2", 20, 0, 0, 0, 8);
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-o", "data_file=gone.raw", "nodata.qcow2", "1M");
        Files.delete(dir.resolve("gone.raw"));
        Qemu.ok(dir, img, "create", "-q", "-f", "vpc", "checksum.vpc", "4M");
        poke("checksum.vpc", 64, 0, 0, 0, 0);
        Qemu.ok(dir, img, "create", "-q", "-f", "vpc", "cookie.vpc", "4M");
        poke("cookie.vpc", 512, 'x', 'x', 'x', 'x');
        Qemu.ok(dir, img, "create", "-q", "-f", "vhdx", "headers.vhdx", "4M");
        poke("headers.vhdx", 64 << 10, 'x', 'x', 'x', 'x');
        poke("headers.vhdx", 128 << 10, 'x', 'x', 'x', 'x');
        Qemu.ok(dir, img, "create", "-q", "-f", "vhdx", "regions.vhdx", "4M");
        poke("regions.vhdx", 192 << 10, 'x', 'x', 'x', 'x');
        poke("regions.vhdx", 256 << 10, 'x', 'x', 'x', 'x');
        Qemu.ok(dir, img, "create", "-q", "-f", "vhdx", "truncated.vhdx", "16M");
        Qemu.ok(dir, Qemu.io(), "-f", "vhdx", "-c", "write -P 1 0 4k", "-c", "write -P 2 9M 4k", "truncated.vhdx");
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("truncated.vhdx").toFile(), "rw")) {
            f.setLength(f.length() - (512 << 10)); // the second block now ends past the end of the file
        }
        Qemu.ok(dir, img, "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "flat.vmdk", "1M");
        String descriptor = Files.readString(dir.resolve("flat.vmdk"), StandardCharsets.US_ASCII);
        String extent = "RW 2048 FLAT \"flat-flat.vmdk\" 0";
        descriptor("type.vmdk", descriptor.replace("monolithicFlat", "bogusType"));
        descriptor("notype.vmdk", descriptor.replaceAll("createType=.*\n", ""));
        descriptor("extenttype.vmdk", descriptor.replace(extent, "RW 2048 BOGUS \"flat-flat.vmdk\" 0"));
        descriptor("nooffset.vmdk", descriptor.replace(extent, "RW 2048 FLAT \"flat-flat.vmdk\""));
        descriptor("vmfsoffset.vmdk", descriptor.replace(extent, "RW 2048 VMFS \"flat-flat.vmdk\" 0"));
        descriptor("sparseflat.vmdk", descriptor.replace(extent, "RW 2048 SPARSE \"flat-flat.vmdk\""));
        descriptor("noextent.vmdk", descriptor.replace(extent, "RW 2048 FLAT \"gone-flat.vmdk\" 0"));
        Files.createDirectory(dir.resolve("sub"));
        Files.copy(dir.resolve("noextent.vmdk"), dir.resolve("sub/noextent.vmdk"));
        both = new CliDifferential(dir);
    }

    private static void poke(String file, long at, int... bytes) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve(file).toFile(), "rw")) {
            f.seek(at);
            for (int b : bytes) {
                f.write(b);
            }
        }
    }

    private static void descriptor(String file, String text) throws IOException {
        Files.writeString(dir.resolve(file), text, StandardCharsets.US_ASCII);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"info; -f qcow2 zero.raw", "info; version4.qcow2", "info; cluster8.qcow2",
        "map; nodata.qcow2", "check; nodata.qcow2", "info; nodata.qcow2", "info; --output=json nodata.qcow2",
        "info; --backing-chain nodata.qcow2", "info; -f vpc zero.raw", "info; checksum.vpc", "map; cookie.vpc",
        "info; -f vpc headers.vhdx", "info; -f vhdx zero.raw", "info; headers.vhdx", "info; regions.vhdx",
        "map; regions.vhdx", "info; -f vmdk zero.raw", "info; -f vmdk big.qcow2",
        "info; -f vmdk binary.bin", "info; -f vmdk text.txt", "info; type.vmdk", "info; notype.vmdk",
        "info; extenttype.vmdk", "map; nooffset.vmdk", "info; vmfsoffset.vmdk", "info; sparseflat.vmdk",
        "info; noextent.vmdk", "map; sub/noextent.vmdk", "convert; -O raw sub/noextent.vmdk OUT",
        "info; truncated.vhdx", "map; --output=json truncated.vhdx"})
    void refusedInQemuImgsWords(String subcommand, String line) throws Exception {
        both.agree(subcommand, line, "raw");
    }
}
