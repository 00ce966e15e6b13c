package imago.cli;

import imago.cli.command.Cli;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;

/**
 * The {@code imago} command: {@code info}, {@code create}, {@code convert}, {@code io}, {@code map},
 * {@code compare}, {@code snapshot} and {@code bench}, with qemu-img's and qemu-io's syntax, output and
 * exit codes. Run {@code imago --help}.
 */
public final class Main {

    private Main() {
    }

    /**
     * Runs the command and exits with its status: 0 on success, 1 on any failure (compare: 1 when the
     * images differ, 2 and more when they cannot be opened or read, as qemu-img compare).
     *
     * @param args the command line
     */
    public static void main(String[] args) {
        configureLogging(args);
        PrintStream out = new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16),
                false, System.out.charset());
        int status = Cli.run(Cli.invokedName(), out, System.err, args);
        out.flush();
        System.err.flush();
        // halt, not exit: System.exit first asks the System.Logger "java.lang.Runtime" whether to log the
        // exit, which on a JDK with java.logging sets up java.util.logging: 20-40 ms, a tenth of a short
        // command. Nothing is lost: the output is flushed, and no shutdown hook is left (nbd removes its own).
        Runtime.getRuntime().halt(status);
    }

    /**
     * Sends library log messages (slf4j-simple) to standard error: warnings and worse, or everything
     * with {@code --debug}. Must run before the first logger is made.
     */
    static void configureLogging(String[] args) {
        boolean debug = false;
        for (String a : args) {
            if (a.equals("--")) {
                break;
            }
            debug |= a.equals("--debug");
        }
        setIfAbsent("org.slf4j.simpleLogger.defaultLogLevel", debug ? "debug" : "warn");
        setIfAbsent("org.slf4j.simpleLogger.logFile", "System.err");
        setIfAbsent("org.slf4j.simpleLogger.showThreadName", "false");
        setIfAbsent("org.slf4j.simpleLogger.showShortLogName", "true");
        setIfAbsent("org.slf4j.simpleLogger.levelInBrackets", "false");
    }

    private static void setIfAbsent(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }
}
