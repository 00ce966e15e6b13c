package imago.cli.io;

import java.io.IOException;
import java.util.List;

/**
 * One qemu-io command: qemu-io's {@code cmdinfo_t}, its name, argument counts ({@code -1}: no limit), help,
 * whether it writes (refused on a read-only image), whether it runs with no image open, and its handler.
 */
record Cmd(String name, String altName, int argMin, int argMax, String args, String oneLine, String help,
        boolean writes, boolean global, Handler handler) {

    /** Runs the command with its arguments; returns 0 or a negative errno, as qemu-io's command functions do. */
    @FunctionalInterface
    interface Handler {
        int run(String name, List<String> args) throws IOException;
    }
}
