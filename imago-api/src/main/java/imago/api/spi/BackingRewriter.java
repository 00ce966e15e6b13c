package imago.api.spi;

import java.io.IOException;

/**
 * Changes what a layer says about its backing file ({@code rebase}) and empties a layer whose data went into it
 * ({@code commit}). Called with every other request of the image excluded.
 */
public interface BackingRewriter extends Capability {

    /**
     * Records {@code file} (or no backing file when {@code null}) with {@code format} (none when {@code null}) as
     * the layer's backing file, durably, changing no data.
     *
     * @throws imago.api.UnsupportedFeatureException if this image cannot name that backing file
     * @throws IOException if it fails; the layer stays consistent
     */
    void changeBackingFile(String file, String format) throws IOException;

    /**
     * Drops every allocation of the layer, so that all reads fall through to the backing file.
     *
     * @throws IOException if it fails; the layer stays consistent
     */
    void makeEmpty() throws IOException;
}
