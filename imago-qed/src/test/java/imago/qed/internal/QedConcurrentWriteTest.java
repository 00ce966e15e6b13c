package imago.qed.internal;

import imago.testkit.ConcurrentWriteTest;

/** The kit's concurrent writes on a qed image. */
class QedConcurrentWriteTest extends ConcurrentWriteTest {
    QedConcurrentWriteTest() {
        super("qed");
    }
}
