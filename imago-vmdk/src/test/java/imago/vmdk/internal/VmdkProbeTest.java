package imago.vmdk.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.spi.Confidence;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Probing as QEMU's {@code vmdk_probe}: the two magics, or a descriptor's {@code version=} line. */
class VmdkProbeTest {
    private final VmdkFormatDriver driver = new VmdkFormatDriver();

    private Confidence probe(byte[] head) {
        return driver.probe(ByteBuffer.wrap(head).asReadOnlyBuffer(), head.length);
    }

    private Confidence probe(String text) {
        return probe(text.getBytes(StandardCharsets.ISO_8859_1));
    }

    @Test
    void magics() {
        assertEquals(Confidence.STRONG, probe("KDMV\u0001\u0000\u0000\u0000"));
        assertEquals(Confidence.STRONG, probe("COWD"));
        assertEquals(Confidence.NONE, probe("KDM"));
        assertEquals(Confidence.NONE, probe("VMDK"));
        assertEquals(Confidence.NONE, probe(new byte[0]));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "# Disk DescriptorFile\nversion=1\nCID=1\n",
        "version=2\n",
        "version=3\r\n",
        "#\n#\n   \nversion=1\n",
        "  \r\nversion=1\n",
        "# a comment at the end of the window without a newline, then version\n#x\nversion=1\n",
    })
    void descriptorsQemuRecognises(String text) {
        assertEquals(Confidence.STRONG, probe(text));
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "# Disk DescriptorFile\n\nversion=1\n",   // an empty line: QEMU's probe gives up
        "version=4\n",
        "version=1",                               // no line end within the window
        "version=1 \n",
        " version=1\n",
        "\tversion=1\n",
        "CID=1\nversion=1\n",
        "# only comments\n",
        "QFI\u00fb",
    })
    void textQemuDoesNotRecognise(String text) {
        assertEquals(Confidence.NONE, probe(text));
    }

    @Test
    void randomBytesAreNotVmdk() {
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < 2000; i++) {
            byte[] b = new byte[r.nextInt(1, VmdkFormatDriver.PROBE_LENGTH)];
            r.nextBytes(b);
            if (b.length >= 4 && (b[0] == 'K' || b[0] == 'C' || b[0] == 'v' || b[0] == '#' || b[0] == ' ')) {
                continue;
            }
            assertEquals(Confidence.NONE, probe(b));
        }
    }

    /** Probing never throws and never reads past the window it is given. */
    @Test
    void toleratesCutWindows() {
        byte[] text = "# c\n   \nversion=1\n".getBytes(StandardCharsets.US_ASCII);
        for (int n = 0; n <= text.length; n++) {
            byte[] cut = Arrays.copyOf(text, n);
            Confidence c = probe(cut);
            assertEquals(n == text.length ? Confidence.STRONG : Confidence.NONE, c, "window of " + n);
        }
    }
}
