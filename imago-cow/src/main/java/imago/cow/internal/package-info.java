/**
 * The cow driver's implementation. So far it recognises cow images (every UML and QEMU variant's
 * magic and version) when probing, so that they are never mistaken for raw ones, and refuses to open
 * or create them with a clear {@link imago.api.UnsupportedFeatureException}.
 */
package imago.cow.internal;
