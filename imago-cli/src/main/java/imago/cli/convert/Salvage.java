package imago.cli.convert;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * {@code qemu-img convert --salvage}: when a read fails, the range is read again sector by sector, and each
 * 512-byte sector that still fails is reported and copied as zeroes.
 */
final class Salvage {
    private static final int SECTOR = 512;

    private Salvage() {
    }

    /**
     * Fills {@code buffer} from {@code start} to its limit with the source's bytes at {@code offset}, sector by
     * sector, zeroes for those that cannot be read; leaves the position at the limit, as a read does.
     */
    static void readSectors(Source source, ByteBuffer buffer, int start, long offset, Consumer<String> report) {
        int end = buffer.limit();
        for (int at = start; at < end; at += SECTOR) {
            int n = Math.min(SECTOR, end - at);
            ByteBuffer sector = buffer.duplicate().limit(at + n).position(at);
            long where = offset + (at - start);
            try {
                source.read(sector, where);
            } catch (IOException e) {
                report.accept("error while reading offset " + where + ": " + ReadFailure.strerror(e));
                for (int i = at; i < at + n; i++) {
                    buffer.put(i, (byte) 0);
                }
            }
        }
        buffer.position(end);
    }
}
