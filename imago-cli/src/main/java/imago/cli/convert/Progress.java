package imago.cli.convert;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongConsumer;

/**
 * qemu-img's {@code -p} progress: {@code "    (12.34/100%)\r"} whenever another percent is done, and a
 * final {@code 100.00} and newline. Thread-safe.
 */
public final class Progress implements LongConsumer {
    private final PrintStream out;
    private final long total;
    private long done;
    private double lastPrinted;

    /**
     * @param out where to print
     * @param total how many bytes make 100%
     */
    public Progress(PrintStream out, long total) {
        this.out = out;
        this.total = total;
    }

    /** Prints the starting {@code 0.00}. */
    public synchronized void start() {
        print(0);
    }

    @Override
    public synchronized void accept(long bytes) {
        done += bytes;
        double current = total == 0 ? 100 : Math.min(100, 100.0 * done / total);
        if (current > lastPrinted + 1 || current == 100) {
            print(current);
        }
    }

    /** Prints {@code 100.00} and ends the line. */
    public synchronized void finish() {
        print(100);
        out.print('\n');
        out.flush();
    }

    private void print(double current) {
        lastPrinted = current;
        out.print(String.format(Locale.ROOT, "    (%3.2f/100%%)\r", current));
        out.flush();
    }
}
