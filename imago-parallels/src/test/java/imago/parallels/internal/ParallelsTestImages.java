package imago.parallels.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** Builds what qemu-img cannot make: format extension clusters. */
final class ParallelsTestImages {
    private ParallelsTestImages() {
    }

    /**
     * Appends a format extension cluster holding {@code features} (then the end marker) to the file and points the
     * header at it.
     */
    static void appendExtension(Path image, int cluster, byte[] features) throws IOException {
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long at = (ch.size() + cluster - 1) / cluster * cluster;
            ch.write(ByteBuffer.wrap(extension(cluster, features, true)), at);
            ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, at / 512), 56);
        }
    }

    /** An extension cluster with {@code features}, and its MD5 right or wrong. */
    static byte[] extension(int cluster, byte[] features, boolean rightSum) {
        ByteBuffer b = ByteBuffer.allocate(cluster).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0, ParallelsExtension.MAGIC);
        b.put(24, features);
        if (rightSum) {
            try {
                MessageDigest md5 = MessageDigest.getInstance("MD5");
                md5.update(b.array(), 24, cluster - 24);
                b.put(8, md5.digest());
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
        }
        return b.array();
    }
}
