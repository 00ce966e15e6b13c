package imago.qcow.internal;

import imago.testkit.ConcurrentWriteTest;

/** The kit's concurrent writes on a qcow image. */
class QcowConcurrentWriteTest extends ConcurrentWriteTest {
    QcowConcurrentWriteTest() {
        super("qcow");
    }
}
