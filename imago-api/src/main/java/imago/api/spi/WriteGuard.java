package imago.api.spi;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Inspects the first sector as a write would leave it, before the write happens. The probe module
 * installs one on raw images it chose by probing, so that a guest cannot turn a raw image into
 * something that probes as another format (QEMU's rule since CVE-2008-2004).
 */
@FunctionalInterface
public interface WriteGuard {

    /** The number of leading bytes the guard looks at. */
    int GUARDED_BYTES = 512;

    /**
     * Throws if {@code firstSector} (the first {@link #GUARDED_BYTES} bytes after the write, read-only)
     * must not be written.
     *
     * @throws IOException to refuse the write
     */
    void check(ByteBuffer firstSector) throws IOException;
}
