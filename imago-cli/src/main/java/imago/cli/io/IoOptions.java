package imago.cli.io;

/**
 * What qemu-io's global options change in how its commands run on the open image.
 *
 * @param unmap whether {@code discard} reaches the image ({@code -d unmap}, qemu-io's default) or is ignored
 *     ({@code -d ignore}), the command still reporting success as qemu-io's does
 * @param copyOnRead whether a read copies what it finds below the top image into it ({@code -C})
 * @param writeThrough whether each command that writes is followed by a flush, as QEMU's {@code writethrough}
 *     and {@code directsync} cache modes make each write stable before it completes
 */
public record IoOptions(boolean unmap, boolean copyOnRead, boolean writeThrough) {
    /** qemu-io's defaults: discards unmap, reads copy nothing, writes are flushed when asked. */
    public static final IoOptions DEFAULTS = new IoOptions(true, false, false);
}
