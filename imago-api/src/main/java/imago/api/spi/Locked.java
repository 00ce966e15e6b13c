package imago.api.spi;

import java.io.IOException;
import java.util.concurrent.locks.Lock;

/** Running a request's step under a lock, after a check that the request may run (the image is open, writable). */
final class Locked {

    /** A step of a request. */
    @FunctionalInterface
    interface Step<T> {
        T run() throws IOException;
    }

    /** A check before the step: throws if the request may not run. */
    @FunctionalInterface
    interface Check {
        void check() throws IOException;
    }

    private Locked() {
    }

    /** Runs {@code step} holding {@code lock}, once {@code check} passed, and returns what it returns. */
    static <T> T run(Lock lock, Check check, Step<T> step) throws IOException {
        lock.lock();
        try {
            check.check();
            return step.run();
        } finally {
            lock.unlock();
        }
    }
}
