package imago.cli.io;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * GNU {@code getopt(3)} for qemu-io's commands: short options, clusters ({@code -qv}), arguments
 * attached or separate ({@code -P0xab}, {@code -P 0xab}), options after operands (permutation), and
 * {@code --} to end them. Errors are reported on standard error with glibc's wording.
 */
final class GetOpt {
    /** Returned by {@link #next()} for an unknown option or a missing argument. */
    static final int ERROR = '?';
    /** Returned by {@link #next()} when the options are done. */
    static final int DONE = -1;

    private final String command;
    private final List<String> args;
    private final String optstring;
    private final PrintStream err;
    private final List<String> operands = new ArrayList<>();
    private int index;
    private int cluster = -1; // position inside args.get(index) when in a cluster
    private String optarg;

    /**
     * @param command the command name, for messages
     * @param args the arguments after the command name
     * @param optstring getopt's option string ({@code "qvP:"}: a colon marks an option with an argument)
     * @param err where glibc would print its messages
     */
    GetOpt(String command, List<String> args, String optstring, PrintStream err) {
        this.command = command;
        this.args = args;
        this.optstring = optstring;
        this.err = err;
    }

    /** The next option character, {@link #ERROR}, or {@link #DONE}. */
    int next() {
        optarg = null;
        while (cluster < 0) {
            if (index >= args.size()) {
                return DONE;
            }
            String a = args.get(index);
            if (a.equals("--")) {
                operands.addAll(args.subList(index + 1, args.size()));
                index = args.size();
                return DONE;
            }
            if (a.length() > 1 && a.charAt(0) == '-') {
                cluster = 1;
            } else {
                operands.add(a);
                index++;
            }
        }
        String a = args.get(index);
        char c = a.charAt(cluster++);
        boolean last = cluster >= a.length();
        int at = c == ':' ? -1 : optstring.indexOf(c);
        if (at < 0) {
            err.println(command + ": invalid option -- '" + c + "'");
            advanceIf(last);
            return ERROR;
        }
        boolean takesArgument = at + 1 < optstring.length() && optstring.charAt(at + 1) == ':';
        if (!takesArgument) {
            advanceIf(last);
            return c;
        }
        if (!last) {
            optarg = a.substring(cluster);
            advanceIf(true);
            return c;
        }
        advanceIf(true);
        if (index >= args.size()) {
            err.println(command + ": option requires an argument -- '" + c + "'");
            return ERROR;
        }
        optarg = args.get(index++);
        return c;
    }

    private void advanceIf(boolean last) {
        if (last) {
            cluster = -1;
            index++;
        }
    }

    /** The argument of the option just returned. */
    String optarg() {
        return optarg;
    }

    /** The operands (non-option arguments), once {@link #next()} has returned {@link #DONE}. */
    List<String> operands() {
        return operands;
    }
}
