package imago.cow.internal;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.BitSet;

/**
 * Writes cow images byte by byte as QEMU's {@code block/cow.c} and Linux's
 * {@code arch/um/drivers/cow_user.c} lay them out, independently of the driver's own header records, so
 * that the driver is tested against the structs rather than against itself.
 */
final class CowImages {
    private CowImages() {
    }

    /** The fields of one image to write. */
    record Spec(CowVariant variant, ByteOrder v1Order, String backing, long mtime, long size, int sectorSize,
            int alignment) {

        static Spec of(CowVariant variant, String backing, long size) {
            return new Spec(variant, ByteOrder.BIG_ENDIAN, backing, 1_234_567_890L, size, 512, 512);
        }

        Spec withOrder(ByteOrder order) {
            return new Spec(variant, order, backing, mtime, size, sectorSize, alignment);
        }

        Spec withAlignment(int a) {
            return new Spec(variant, v1Order, backing, mtime, size, sectorSize, a);
        }

        Spec withSectorSize(int ss) {
            return new Spec(variant, v1Order, backing, mtime, size, ss, alignment);
        }

        long sectors() {
            return (size + sectorSize - 1) / sectorSize;
        }

        int headerLength() {
            return switch (variant) {
                case QEMU_V2 -> 1056;
                case QEMU_V2_32BIT -> 1048;
                case UML_V1 -> 280;
                case UML_V2 -> 4120;
                case UML_V3 -> 4128;
                case UML_V3_BROKEN -> 4136;
            };
        }

        long bitmapOffset() {
            return switch (variant) {
                case UML_V3, UML_V3_BROKEN -> roundUp(headerLength(), alignment);
                default -> headerLength();
            };
        }

        /** The bitmap length as each tool computes it (UML v1/v2: one byte short for partial bytes). */
        long bitmapLength() {
            return switch (variant) {
                case UML_V1, UML_V2 -> (size + sectorSize - 1) / (8L * sectorSize);
                default -> (sectors() + 7) / 8;
            };
        }

        long dataOffset() {
            long end = bitmapOffset() + bitmapLength();
            return switch (variant) {
                case QEMU_V2, QEMU_V2_32BIT -> roundUp(end, 512);
                case UML_V1, UML_V2 -> roundUp(end, sectorSize);
                case UML_V3, UML_V3_BROKEN -> roundUp(end, alignment);
            };
        }

        /** The bits the image can hold (UML v1/v2 use the byte past their short bitmap if it is free). */
        long bitCapacity() {
            long bytes = Math.min((sectors() + 7) / 8, dataOffset() - bitmapOffset());
            return Math.min(sectors(), bytes * 8);
        }
    }

    static long roundUp(long x, long a) {
        return (x + a - 1) / a * a;
    }

    /** The header bytes of {@code s}. */
    static byte[] header(Spec s) {
        ByteBuffer b = ByteBuffer.allocate(s.headerLength());
        byte[] name = s.backing().getBytes(StandardCharsets.UTF_8);
        switch (s.variant()) {
            case QEMU_V2, QEMU_V2_32BIT -> {
                boolean b32 = s.variant() == CowVariant.QEMU_V2_32BIT;
                b.order(ByteOrder.BIG_ENDIAN).putInt(0, 0x4F4F4F4D).putInt(4, 2).put(8, name)
                        .putInt(1032, (int) s.mtime()).putLong(b32 ? 1036 : 1040, s.size())
                        .putInt(b32 ? 1044 : 1048, s.sectorSize());
            }
            case UML_V1 -> b.order(s.v1Order()).putInt(0, 0x4F4F4F4D).putInt(4, 1).put(8, name)
                    .putInt(264, (int) s.mtime()).putLong(268, s.size()).putInt(276, s.sectorSize());
            case UML_V2 -> b.order(ByteOrder.BIG_ENDIAN).putInt(0, 0x4F4F4F4D).putInt(4, 2).put(8, name)
                    .putInt(4104, (int) s.mtime()).putLong(4108, s.size()).putInt(4116, s.sectorSize());
            case UML_V3 -> b.order(ByteOrder.BIG_ENDIAN).putInt(0, 0x4F4F4F4D).putInt(4, 3)
                    .putInt(8, (int) s.mtime()).putLong(12, s.size()).putInt(20, s.sectorSize())
                    .putInt(24, s.alignment()).putInt(28, 0).put(32, name);
            case UML_V3_BROKEN -> b.order(ByteOrder.BIG_ENDIAN).putInt(0, 0x4F4F4F4D).putInt(4, 3)
                    // a 64-bit little-endian time_t field holding htonl(mtime): the BE u32 in its first half
                    .putInt(8, (int) s.mtime()).putInt(12, 0).putLong(16, s.size()).putInt(24, s.sectorSize())
                    .putInt(28, s.alignment()).putInt(32, 0).put(36, name);
        }
        return b.array();
    }

    /**
     * A whole image: header, bitmap with {@code present} set, and for each present sector its guest
     * bytes taken from {@code content}; the file ends where its writer left it (QEMU: bitmap end; UML:
     * data end) unless data goes further.
     */
    static byte[] image(Spec s, BitSet present, byte[] content) {
        boolean uml = switch (s.variant()) {
            case UML_V1, UML_V2, UML_V3, UML_V3_BROKEN -> true;
            default -> false;
        };
        long end = uml ? s.dataOffset() + s.size() : s.bitmapOffset() + s.bitmapLength();
        int last = present.previousSetBit(Integer.MAX_VALUE);
        if (last >= 0) {
            end = Math.max(end, s.dataOffset() + (long) (last + 1) * s.sectorSize());
        }
        byte[] file = new byte[Math.toIntExact(end)];
        byte[] h = header(s);
        System.arraycopy(h, 0, file, 0, h.length);
        for (int n = present.nextSetBit(0); n >= 0; n = present.nextSetBit(n + 1)) {
            file[(int) (s.bitmapOffset() + n / 8)] |= (byte) (1 << (n % 8));
            int from = n * s.sectorSize();
            int len = Math.min(s.sectorSize(), content.length - from);
            System.arraycopy(content, from, file, (int) (s.dataOffset() + from), len);
        }
        return file;
    }
}
