package imago.vpc.internal;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;

/**
 * Writes dynamic and differencing VHDs from the specification alone, independently of the driver, for tests:
 * footer copy, header, parent locator data, BAT, blocks (bitmap then data) in block order, footer. Fields can be
 * set to anything, hostile values included.
 */
final class VhdBuilder {
    /** One parent locator: its platform code and its stored bytes. */
    record Locator(String code, byte[] data) {
        static Locator w2ru(String path) {
            return new Locator("W2ru", path.getBytes(StandardCharsets.UTF_16LE));
        }

        static Locator w2ku(String path) {
            return new Locator("W2ku", path.getBytes(StandardCharsets.UTF_16LE));
        }

        static Locator macx(String url) {
            return new Locator("MacX", url.getBytes(StandardCharsets.UTF_8));
        }
    }

    /** One allocated block: its sector bitmap and data. */
    record Block(byte[] bitmap, byte[] data) {
    }

    long size;
    int blockSize = 2 << 20;
    int diskType = 4;
    String creator = "win ";
    String parentName = "";
    UUID parentId = new UUID(1, 2);
    final List<Locator> locators = new ArrayList<>();
    final Map<Integer, Block> blocks = new TreeMap<>();
    /** Extra BAT entries past those the size needs. */
    int extraEntries;

    VhdBuilder(long size) {
        this.size = size;
    }

    int bitmapLength() {
        return Math.max(512, (blockSize / 512 / 8 + 511) & ~511);
    }

    long entries() {
        return (size + blockSize - 1) / blockSize + extraEntries;
    }

    static int checksum(byte[] b, int from, int length) {
        int sum = 0;
        for (int i = from; i < from + length; i++) {
            sum += b[i] & 0xFF;
        }
        return ~sum;
    }

    byte[] footer(long dataOffset) {
        ByteBuffer f = ByteBuffer.allocate(512);
        f.put("conectix".getBytes(StandardCharsets.US_ASCII)).putInt(2).putInt(0x10000).putLong(dataOffset).putInt(1234)
                .put(creator.getBytes(StandardCharsets.ISO_8859_1)).putInt(0x000a0000).put("Wi2k".getBytes(StandardCharsets.US_ASCII))
                .putLong(size).putLong(size).putShort((short) 65535).put((byte) 16).put((byte) 255).putInt(diskType);
        f.putLong(68, 0x1111L).putLong(76, 0x2222L);
        f.putInt(64, checksum(f.array(), 0, 512));
        return f.array();
    }

    byte[] build() {
        long locatorsAt = 1536;
        long cursor = locatorsAt;
        long[] locatorOffsets = new long[locators.size()];
        int[] locatorSpace = new int[locators.size()];
        for (int i = 0; i < locators.size(); i++) {
            locatorOffsets[i] = cursor;
            locatorSpace[i] = (locators.get(i).data().length + 511) & ~511;
            cursor += Math.max(512, locatorSpace[i]);
        }
        long batAt = cursor;
        long batBytes = (entries() * 4 + 511) & ~511;
        long blocksAt = batAt + batBytes;
        int span = bitmapLength() + blockSize;
        long fileSize = blocksAt + (long) blocks.size() * span + 512;
        ByteBuffer out = ByteBuffer.allocate((int) fileSize);
        out.put(0, footer(512));
        ByteBuffer h = ByteBuffer.allocate(1024);
        h.put("cxsparse".getBytes(StandardCharsets.US_ASCII)).putLong(-1).putLong(batAt).putInt(0x10000)
                .putInt((int) entries()).putInt(blockSize);
        h.putLong(40, parentId.getMostSignificantBits()).putLong(48, parentId.getLeastSignificantBits()).putInt(56, 4321);
        byte[] name = parentName.getBytes(StandardCharsets.UTF_16BE);
        h.put(64, name, 0, Math.min(512, name.length));
        for (int i = 0; i < locators.size(); i++) {
            int e = 576 + 24 * i;
            h.put(e, locators.get(i).code().getBytes(StandardCharsets.ISO_8859_1)).putInt(e + 4, locatorSpace[i])
                    .putInt(e + 8, locators.get(i).data().length).putLong(e + 16, locatorOffsets[i]);
            out.put((int) locatorOffsets[i], locators.get(i).data());
        }
        h.putInt(36, checksum(h.array(), 0, 1024));
        out.put(512, h.array());
        for (long i = 0; i < batBytes / 4; i++) {
            out.putInt((int) (batAt + i * 4), -1);
        }
        long at = blocksAt;
        for (Map.Entry<Integer, Block> e : blocks.entrySet()) {
            out.putInt((int) (batAt + 4L * e.getKey()), (int) (at / 512));
            out.put((int) at, e.getValue().bitmap());
            out.put((int) at + bitmapLength(), e.getValue().data());
            at += span;
        }
        out.put((int) at, footer(512));
        return out.array();
    }
}
