package imago.qcow2.internal;

import imago.api.spi.Storage;

/**
 * A room of an open layer: one concern of {@link Qcow2Instance} over the layer's shared {@link Qcow2State}, with
 * the fixed facts every room reads (the file, its name, the cluster geometry) at hand.
 */
abstract class Qcow2Room {
    final Qcow2State st;
    final Storage storage;
    final String resource;
    final int clusterBits;
    final int clusterSize;
    final int l2Bits;
    /** log2 of the unit mappings are classified in (the subcluster with extended L2 entries). */
    final int unitBits;
    final boolean extendedL2;

    Qcow2Room(Qcow2State st) {
        this.st = st;
        this.storage = st.storage;
        this.resource = st.resource;
        this.clusterBits = st.geometry.clusterBits();
        this.clusterSize = st.geometry.clusterSize();
        this.l2Bits = st.geometry.l2Bits();
        this.unitBits = st.geometry.unitBits();
        this.extendedL2 = st.geometry.extendedL2();
    }
}
