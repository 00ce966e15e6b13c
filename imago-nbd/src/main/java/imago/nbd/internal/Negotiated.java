package imago.nbd.internal;

import java.util.List;

/**
 * What a handshake agreed on.
 *
 * @param export the export the client is in
 * @param structured whether structured replies were negotiated
 * @param contexts the meta contexts the client selected for block status
 */
record Negotiated(Export export, boolean structured, List<MetaContext> contexts) {
}
