package imago.qcow2.internal;

import java.io.IOException;

/** A step that may fail with an {@link IOException}: what one room asks of another without depending on it. */
@FunctionalInterface
interface Qcow2Action {
    void run() throws IOException;
}
