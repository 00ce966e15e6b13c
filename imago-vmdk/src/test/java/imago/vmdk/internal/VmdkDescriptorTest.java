package imago.vmdk.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The descriptor grammar, read strictly and with limits. */
class VmdkDescriptorTest {

    /** What qemu-img 7.2 writes for {@code -o subformat=twoGbMaxExtentFlat} (3 GiB). */
    static final String QEMU_SPLIT_FLAT = """
            # Disk DescriptorFile
            version=1
            CID=9caf94e4
            parentCID=ffffffff
            createType="twoGbMaxExtentFlat"

            # Extent description
            RW 4194304 FLAT "twoGbMaxExtentFlat-f001.vmdk" 0
            RW 2097152 FLAT "twoGbMaxExtentFlat-f002.vmdk" 0

            # The Disk Data Base
            #DDB

            ddb.virtualHWVersion = "4"
            ddb.geometry.cylinders = "6241"
            ddb.geometry.heads = "16"
            ddb.geometry.sectors = "63"
            ddb.adapterType = "ide"
            ddb.toolsVersion = "2147483647"
            """;

    static VmdkDescriptor parse(String text) throws ImageException {
        return VmdkDescriptor.parse("d.vmdk", 0, ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)));
    }

    static String head(String createType) {
        return "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"" + createType
                + "\"\n";
    }

    @Test
    void readsWhatQemuWrites() throws Exception {
        VmdkDescriptor d = parse(QEMU_SPLIT_FLAT);
        assertEquals(1, d.version());
        assertEquals(0x9caf94e4L, d.cid());
        assertEquals(VmdkDescriptor.NO_PARENT, d.parentCid());
        assertEquals("twoGbMaxExtentFlat", d.createType());
        assertEquals(Optional.empty(), d.parentFileNameHint());
        assertEquals(2, d.extents().size());
        VmdkExtentLine second = d.extents().get(1);
        assertEquals(VmdkExtentLine.Access.RW, second.access());
        assertEquals(2097152, second.sectors());
        assertEquals(VmdkExtentLine.Type.FLAT, second.type());
        assertEquals(Optional.of("twoGbMaxExtentFlat-f002.vmdk"), second.fileName());
        assertEquals(0, second.offsetSectors());
        assertEquals(9, second.line());
        assertEquals("ide", d.entry("ddb.adapterType").orElseThrow());
        assertEquals("2147483647", d.entry("ddb.toolsVersion").orElseThrow());
    }

    /** VMware's own descriptors: encoding, isNativeSnapshot, uuid, longContentID, CRLF line ends, tabs. */
    @Test
    void keepsUnknownEntriesInOrder() throws Exception {
        String text = "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=fffffffe\r\n"
                + "parentCID=ffffffff\r\n"
                + "isNativeSnapshot=\"no\"\r\ncreateType=\"vmfs\"\r\n\r\n# Extent description\r\n"
                + "RW 4192256 VMFS \"test-flat.vmdk\"\r\nRDONLY\t100\tZERO\r\nNOACCESS 7 FLAT \"x y.raw\" 12\r\n\r\n"
                + "ddb.uuid = \"60 00 C2 9a\"\r\nddb.longContentID = \"8f15b3d0009d9a3f456ff7b28d324d2a\"\r\n";
        VmdkDescriptor d = parse(text);
        assertEquals(List.of("version", "encoding", "CID", "parentCID", "isNativeSnapshot", "createType", "ddb.uuid",
                "ddb.longContentID"), List.copyOf(d.entries().keySet()));
        assertEquals("60 00 C2 9a", d.entry("ddb.uuid").orElseThrow());
        assertEquals(3, d.extents().size());
        assertEquals(VmdkExtentLine.Type.ZERO, d.extents().get(1).type());
        assertEquals(Optional.empty(), d.extents().get(1).fileName());
        assertEquals(Optional.of("x y.raw"), d.extents().get(2).fileName());
        assertEquals(12, d.extents().get(2).offsetSectors());
        assertEquals(VmdkExtentLine.Access.NOACCESS, d.extents().get(2).access());
    }

    @Test
    void parentFileNameHintIsTheBackingFile() throws Exception {
        VmdkDescriptor d = parse(head("monolithicSparse").replace("parentCID=ffffffff", "parentCID=60c739a8")
                + "parentFileNameHint=\"../base.vmdk\"\n");
        assertEquals(Optional.of("../base.vmdk"), d.parentFileNameHint());
        assertEquals(0x60c739a8L, d.parentCid());
    }

    /** A new CID keeps the old one's width: only its digits change, in place. */
    @Test
    void cidIsRewrittenInPlace() throws Exception {
        VmdkDescriptor d = parse(QEMU_SPLIT_FLAT);
        byte[] next = d.withCid(0x0000abcdL);
        String expected = QEMU_SPLIT_FLAT.replace("CID=9caf94e4", "CID=0000abcd");
        assertArrayEquals(expected.getBytes(StandardCharsets.UTF_8), next);
        assertEquals(0xabcdL, parse(new String(next, StandardCharsets.UTF_8)).cid());
        VmdkDescriptor shortCid = parse(head("monolithicFlat").replace("CID=12345678", "CID=1a") + "RW 1 ZERO\n");
        assertThrows(IllegalArgumentException.class, () -> shortCid.withCid(0x100));
        assertTrue(new String(shortCid.withCid(0xff), StandardCharsets.UTF_8).contains("\nCID=ff\n"));
    }

    /**
     * The first NUL ends the text (an embedded descriptor's padding); what follows is not read, as QEMU does not
     * read it (its CID rewrite of a descriptor file leaves stale bytes of the old text there).
     */
    @Test
    void theFirstNulEndsTheText() throws Exception {
        byte[] text = (head("monolithicFlat") + "RW 8 ZERO\n").getBytes(StandardCharsets.US_ASCII);
        ByteBuffer padded = ByteBuffer.allocate(1024).put(text).position(0);
        assertEquals(1, VmdkDescriptor.parse("d", 512, padded).extents().size());
        ByteBuffer stale = ByteBuffer.allocate(1024).put(text).put(text.length + 1, (byte) '\n')
                .put(900, (byte) 'x').position(0);
        VmdkDescriptor d = VmdkDescriptor.parse("d", 512, stale);
        assertEquals(1, d.extents().size());
        assertEquals(text.length, d.text().length);
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "RW 100 FLAT \"a.raw\"",            // FLAT needs an offset
        "RW 100 VMFS \"a.raw\" 0",          // VMFS takes none
        "RW 100 SPARSE \"a.vmdk\" 5",       // nor does SPARSE
        "RW 100 ZERO \"a.raw\"",            // ZERO has no file
        "RW 0 FLAT \"a.raw\" 0",            // empty extent
        "RW -5 FLAT \"a.raw\" 0",
        "RW 100 FLAT a.raw 0",              // unquoted name
        "RW 100 FLAT \"a.raw 0",            // unclosed quote
        "RW 100 FLAT \"\" 0",               // empty name
        "RW 100 FLAT \"a.raw\"0",           // offset glued to the name
        "RW 100 FLAT \"a.raw\" 0 9",        // trailing garbage
        "RW 100",                           // no type
        "RW 99999999999999999999 ZERO",     // past 2^63
        "RW 18014398509481984 ZERO",        // 2^54 sectors: past 2^63 bytes
        "RW 100 FLAT \"a.raw\" 18014398509481983",
        "rw 100 ZERO",                      // neither an entry nor an extent
        "garbage",
        "CID=12345678",                     // given twice
        "ddb.adapterType = \"ide\" x",
        "ddb.adapterType = ide x",
    })
    void refusesInvalidLines(String line) {
        CorruptImageException e = assertThrows(CorruptImageException.class,
                () -> parse(head("monolithicFlat") + "RW 8 ZERO\n" + line + "\n"));
        assertTrue(e.getMessage().startsWith("d.vmdk: "), e.getMessage());
        assertTrue(e.offset().isPresent(), e.getMessage());
    }

    @Test
    void refusesUnknownExtentTypesNamingThem() {
        CorruptImageException e = assertThrows(CorruptImageException.class,
                () -> parse(head("vmfs") + "RW 8 VMFSRDM \"disk-rdm.vmdk\"\n"));
        assertTrue(e.getMessage().contains("VMFSRDM"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {"version", "CID", "parentCID", "createType"})
    void needsTheHeaderEntries(String key) {
        String text = head("monolithicFlat").lines().filter(l -> !l.startsWith(key + "="))
                .reduce("", (a, b) -> a + b + "\n") + "RW 8 ZERO\n";
        assertThrows(CorruptImageException.class, () -> parse(text));
    }

    @ParameterizedTest
    @ValueSource(strings = {"version=4", "version=x", "CID=123456789", "CID=xyz", "CID=-1", "parentCID=\"\"",
        "parentFileNameHint=\"\""})
    void refusesBadHeaderValues(String entry) {
        String key = entry.substring(0, entry.indexOf('='));
        String text = head("monolithicFlat").lines().filter(l -> !l.startsWith(key + "="))
                .reduce("", (a, b) -> a + b + "\n") + entry + "\nRW 8 ZERO\n";
        assertThrows(CorruptImageException.class, () -> parse(text));
    }

    /** Control characters (a name may not hide a newline or escape sequences) and overlong names. */
    @Test
    void refusesControlCharactersAndLongNames() {
        assertThrows(CorruptImageException.class, () -> parse(head("vmfs") + "RW 8 VMFS \"a\u0001b\"\n"));
        assertThrows(CorruptImageException.class, () -> parse(head("vmfs") + "RW 8 VMFS \"a\u007fb\"\n"));
        assertThrows(CorruptImageException.class, () -> parse(head("vmfs") + "RW 8 VMFS \"a\rb\"\n"));
        assertThrows(CorruptImageException.class, () -> parse(head("vmfs") + "ddb.x = \"\u001b[31m\"\nRW 8 ZERO\n"));
        String longName = "n".repeat(VmdkDescriptor.MAX_NAME_BYTES + 1);
        assertThrows(CorruptImageException.class, () -> parse(head("vmfs") + "RW 8 VMFS \"" + longName + "\"\n"));
        String fits = "é".repeat(VmdkDescriptor.MAX_NAME_BYTES / 2);
        assertDoesNotThrowImage(() -> parse(head("vmfs") + "RW 8 VMFS \"" + fits + "\"\n"));
    }

    /** A NUL ends the text, so a name cannot hide one: the line it cuts short is refused. */
    @Test
    void aNulInsideANameCutsTheLineShort() {
        assertThrows(CorruptImageException.class, () -> parse(head("vmfs") + "RW 8 VMFS \"a\u0000b.vmdk\"\n"));
    }

    /** Invalid UTF-8 is damage; a declared single-byte encoding is read as such. */
    @Test
    void decodesTheDeclaredEncoding() throws Exception {
        byte[] bad = (head("vmfs") + "RW 8 VMFS \"a\u00e9.vmdk\"\n").getBytes(StandardCharsets.ISO_8859_1);
        assertThrows(CorruptImageException.class, () -> VmdkDescriptor.parse("d", 0, ByteBuffer.wrap(bad)));
        byte[] latin = ("encoding=\"windows-1252\"\n" + head("vmfs") + "RW 8 VMFS \"a\u00e9.vmdk\"\n")
                .getBytes(StandardCharsets.ISO_8859_1);
        VmdkDescriptor d = VmdkDescriptor.parse("d", 0, ByteBuffer.wrap(latin));
        assertEquals(Optional.of("a\u00e9.vmdk"), d.extents().getFirst().fileName());
        byte[] utf16 = ("encoding=\"UTF-16\"\n" + head("vmfs")).getBytes(StandardCharsets.ISO_8859_1);
        assertThrows(UnsupportedFeatureException.class, () -> VmdkDescriptor.parse("d", 0, ByteBuffer.wrap(utf16)));
    }

    @Test
    void limitsSizeLinesAndExtents() {
        ByteBuffer huge = ByteBuffer.allocate(VmdkDescriptor.MAX_BYTES + 1);
        ImageLimitException size = assertThrows(ImageLimitException.class, () -> VmdkDescriptor.parse("d", 0, huge));
        assertTrue(size.getMessage().contains("larger than the limit"), size.getMessage());

        String lines = head("monolithicFlat") + "\n".repeat(VmdkDescriptor.MAX_LINES);
        assertThrows(ImageLimitException.class, () -> parse(lines));

        StringBuilder many = new StringBuilder(head("monolithicFlat"));
        for (int i = 0; i <= VmdkDescriptor.MAX_EXTENTS; i++) {
            many.append("RW 1 ZERO\n");
        }
        ImageLimitException extents = assertThrows(ImageLimitException.class, () -> parse(many.toString()));
        assertTrue(extents.getMessage().contains("more than " + VmdkDescriptor.MAX_EXTENTS + " extents"));

        // each extent fits, their sum does not: the virtual size would pass 2^63 bytes
        String big = head("monolithicFlat") + ("RW " + (VmdkDescriptor.MAX_SECTORS / 2 + 1) + " ZERO\n").repeat(2);
        assertThrows(ImageLimitException.class, () -> parse(big));
    }

    private interface ImageCall {
        void run() throws ImageException;
    }

    private static void assertDoesNotThrowImage(ImageCall call) {
        try {
            call.run();
        } catch (ImageException e) {
            throw new AssertionError(e);
        }
    }
}
