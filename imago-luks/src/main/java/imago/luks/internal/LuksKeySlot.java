package imago.luks.internal;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * One of the eight key slots of a LUKS1 header (48 bytes, big-endian): whether it holds the master key, the PBKDF2
 * iterations and salt that turn a passphrase into the key of its material, where the anti-forensic material starts
 * (in 512-byte sectors) and how many stripes it has.
 */
record LuksKeySlot(boolean active, long iterations, byte[] salt, long materialSector, long stripes) {
    static final int LENGTH = 48;
    static final int ENABLED = 0x00AC71F3;
    static final int DISABLED = 0x0000DEAD;

    /** The slot at the buffer's position; {@code state} is checked by the header, which knows where it is. */
    static LuksKeySlot parse(ByteBuffer b, int state) {
        long iterations = Integer.toUnsignedLong(b.getInt());
        byte[] salt = new byte[LuksHeader.SALT_LENGTH];
        b.get(salt);
        long sector = Integer.toUnsignedLong(b.getInt());
        long stripes = Integer.toUnsignedLong(b.getInt());
        return new LuksKeySlot(state == ENABLED, iterations, salt, sector, stripes);
    }

    void writeTo(ByteBuffer b) {
        b.putInt(active ? ENABLED : DISABLED).putInt((int) iterations).put(salt).putInt((int) materialSector)
                .putInt((int) stripes);
    }

    /** This slot with its key material gone, as qemu-img and cryptsetup leave an unused slot. */
    LuksKeySlot disabled() {
        return new LuksKeySlot(false, 0, new byte[LuksHeader.SALT_LENGTH], materialSector, stripes);
    }

    /** The bytes of key material ({@code keyBytes} times the stripes). */
    long materialBytes(int keyBytes) {
        return keyBytes * stripes;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LuksKeySlot s && s.active == active && s.iterations == iterations
                && Arrays.equals(s.salt, salt) && s.materialSector == materialSector && s.stripes == stripes;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(materialSector) * 31 + Arrays.hashCode(salt);
    }

    @Override
    public String toString() {
        return "LuksKeySlot[active=" + active + ", iterations=" + iterations + ", materialSector=" + materialSector
                + ", stripes=" + stripes + "]";
    }
}
