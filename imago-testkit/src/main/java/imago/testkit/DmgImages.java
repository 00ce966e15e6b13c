package imago.testkit;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.zip.Deflater;

/**
 * Builds UDIF images from the published layout, as hdiutil lays them out: the data fork (chunks' bytes), the block
 * tables in an XML property list or a resource fork, and the "koly" trailer.
 */
public final class DmgImages {
    /** Chunk type: sectors of zeroes, nothing stored. */
    public static final int ZEROES = 0;
    /** Chunk type: the sectors' bytes as they are. */
    public static final int RAW = 1;
    /** Chunk type: ignored sectors (they read as zeroes), nothing stored. */
    public static final int IGNORED = 2;
    /** Chunk type: ADC-compressed. */
    public static final int ADC = 0x8000_0004;
    /** Chunk type: zlib-compressed. */
    public static final int ZLIB = 0x8000_0005;
    /** Chunk type: bzip2-compressed. */
    public static final int BZIP2 = 0x8000_0006;
    /** Chunk type: lzfse-compressed. */
    public static final int LZFSE = 0x8000_0007;
    /** Chunk type: the end of a block table. */
    public static final int LAST = 0xffff_ffff;

    private DmgImages() {
    }

    /**
     * One chunk to write: {@code sectors} guest sectors stored as {@code type}.
     *
     * @param type the chunk type
     * @param sectors how many sectors
     */
    public record Plan(int type, int sectors) {
    }

    /**
     * An image of {@code content} (whole sectors) cut into chunks as {@code plan} says, in two block tables (the
     * second starting at the sector where the plan's middle chunk starts), listed in an XML property list or a
     * resource fork. Zero and ignored chunks store nothing; raw chunks the bytes; zlib chunks the deflated bytes;
     * any other type random bytes of the chunk's length.
     */
    public static byte[] image(byte[] content, List<Plan> plan, boolean resourceFork) {
        ByteArrayOutputStream fork = new ByteArrayOutputStream();
        List<byte[]> tables = new ArrayList<>();
        int split = plan.size() / 2;
        int[] bounds = {0, split, plan.size()};
        long sector = 0;
        for (int t = 0; t < 2; t++) {
            long tableFirst = sector;
            long dataOffset = fork.size();
            ByteBuffer mish = ByteBuffer.allocate(204 + 40 * (bounds[t + 1] - bounds[t] + 1));
            mish.putInt(0, 0x6d69_7368).putInt(4, 1).putLong(8, tableFirst).putLong(0x18, dataOffset);
            mish.putInt(200, bounds[t + 1] - bounds[t] + 1);
            int e = 204;
            for (int i = bounds[t]; i < bounds[t + 1]; i++) {
                Plan p = plan.get(i);
                byte[] bytes = java.util.Arrays.copyOfRange(content, (int) sector * 512,
                        (int) (sector + p.sectors()) * 512);
                byte[] stored = switch (p.type()) {
                    case ZEROES, IGNORED -> new byte[0];
                    case RAW -> bytes;
                    case ZLIB -> deflate(bytes);
                    default -> new byte[100];
                };
                mish.putInt(e, p.type()).putLong(e + 8, sector - tableFirst).putLong(e + 0x10, p.sectors())
                        .putLong(e + 0x18, fork.size() - dataOffset).putLong(e + 0x20, stored.length);
                fork.writeBytes(stored);
                sector += p.sectors();
                e += 40;
            }
            mish.putInt(e, LAST).putLong(e + 8, sector - tableFirst);
            mish.putLong(0x10, sector - tableFirst);
            tables.add(mish.array());
        }
        long dataLength = fork.size();
        long infoOffset = fork.size();
        byte[] info = resourceFork ? resourceFork(tables) : plist(tables);
        fork.writeBytes(info);
        ByteBuffer koly = ByteBuffer.allocate(512);
        koly.put(0, "koly".getBytes(StandardCharsets.US_ASCII)).putInt(4, 4).putInt(8, 512);
        koly.putLong(0x18, 0).putLong(0x20, dataLength);
        if (resourceFork) {
            koly.putLong(0x28, infoOffset).putLong(0x30, info.length);
        } else {
            koly.putLong(0xd8, infoOffset).putLong(0xe0, info.length);
        }
        koly.putLong(0x1ec, sector);
        fork.writeBytes(koly.array());
        return fork.toByteArray();
    }

    /** {@code bytes} zlib-compressed. */
    public static byte[] deflate(byte[] bytes) {
        Deflater d = new Deflater();
        d.setInput(bytes);
        d.finish();
        byte[] out = new byte[bytes.length + bytes.length / 100 + 64];
        int n = d.deflate(out);
        d.end();
        return java.util.Arrays.copyOf(out, n);
    }

    private static byte[] plist(List<byte[]> tables) {
        StringBuilder sb = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n"
                + "<dict>\n\t<key>resource-fork</key>\n\t<dict>\n\t\t<key>blkx</key>\n\t\t<array>\n");
        int n = 0;
        for (byte[] t : tables) {
            sb.append("\t\t\t<dict>\n\t\t\t\t<key>Data</key>\n\t\t\t\t<data>\n");
            String b64 = Base64.getEncoder().encodeToString(t);
            for (int i = 0; i < b64.length(); i += 52) {
                sb.append("\t\t\t\t").append(b64, i, Math.min(b64.length(), i + 52)).append('\n');
            }
            sb.append("\t\t\t\t</data>\n\t\t\t\t<key>Name</key>\n\t\t\t\t<string>part ").append(n++)
                    .append("</string>\n\t\t\t</dict>\n");
        }
        // a resource that is not a block table, as hdiutil writes a "plst" one: skipped
        sb.append("\t\t\t<dict>\n\t\t\t\t<key>Data</key>\n\t\t\t\t<data>AAAAAAAAAAA=</data>\n\t\t\t</dict>\n");
        sb.append("\t\t</array>\n\t</dict>\n</dict>\n</plist>\n");
        return sb.toString().getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] resourceFork(List<byte[]> tables) {
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        for (byte[] t : tables) {
            data.writeBytes(ByteBuffer.allocate(4).putInt(t.length).array());
            data.writeBytes(t);
        }
        ByteBuffer fork = ByteBuffer.allocate(256 + data.size() + 64);
        fork.putInt(0, 256).putInt(4, 256 + data.size()).putInt(8, data.size()).putInt(12, 64);
        fork.put(256, data.toByteArray());
        return fork.array();
    }
}
