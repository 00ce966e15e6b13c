/**
 * The qcow2 driver's implementation. So far it recognises qcow2 images when probing, so that they
 * are never mistaken for raw ones, and refuses to open or create them with a clear
 * {@link imago.api.UnsupportedFeatureException}; reading and writing arrive with their own issues.
 */
package imago.qcow2.internal;
