package imago.cli.command;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * qemu-img's option parsing ({@code getopt_long} with a leading {@code ':'}): short options alone or in
 * clusters ({@code -Uf raw}, {@code -fraw}), long options ({@code --force-share}, {@code --object=X}),
 * options among the operands (GNU permutation), {@code --} to end them. A bad option is a {@link UsageError}
 * carrying qemu-img's message.
 */
final class QemuGetopt {
    /** One option found: its short letter, or its long name, and its argument or {@code null}. */
    record Found(String name, String argument) {
    }

    /** An unknown option or a missing argument, with qemu-img's message (printed before its "Try" line). */
    static final class UsageError extends Exception {
        private static final long serialVersionUID = 1L;

        UsageError(String message) {
            super(message, null, false, false);
        }
    }

    private final List<Found> options = new ArrayList<>();
    private final List<String> operands = new ArrayList<>();

    private QemuGetopt() {
    }

    /**
     * Parses {@code args}.
     *
     * @param shortOptions getopt's option string without the leading colon ({@code "hf:O:U"})
     * @param longOptions long option names, each mapped to whether it takes an argument
     * @throws UsageError for an unknown option or a missing argument
     */
    static QemuGetopt parse(List<String> args, String shortOptions, Map<String, Boolean> longOptions)
            throws UsageError {
        QemuGetopt g = new QemuGetopt();
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals("--")) {
                g.operands.addAll(args.subList(i + 1, args.size()));
                break;
            }
            if (a.startsWith("--")) {
                int eq = a.indexOf('=');
                String name = a.substring(2, eq < 0 ? a.length() : eq);
                Boolean takesArgument = longOptions.get(name);
                if (takesArgument == null || !takesArgument && eq >= 0) {
                    throw new UsageError("unrecognized option '" + a + "'");
                }
                String argument = null;
                if (takesArgument) {
                    if (eq >= 0) {
                        argument = a.substring(eq + 1);
                    } else if (i + 1 < args.size()) {
                        argument = args.get(++i);
                    } else {
                        throw new UsageError("missing argument for option '" + a + "'");
                    }
                }
                g.options.add(new Found(name, argument));
            } else if (a.length() > 1 && a.charAt(0) == '-') {
                for (int c = 1; c < a.length(); c++) {
                    char letter = a.charAt(c);
                    int at = letter == ':' ? -1 : shortOptions.indexOf(letter);
                    if (at < 0) {
                        throw new UsageError("unrecognized option '" + a + "'");
                    }
                    if (at + 1 < shortOptions.length() && shortOptions.charAt(at + 1) == ':') {
                        String argument;
                        if (c + 1 < a.length()) {
                            argument = a.substring(c + 1);
                        } else if (i + 1 < args.size()) {
                            argument = args.get(++i);
                        } else {
                            throw new UsageError("missing argument for option '" + a + "'");
                        }
                        g.options.add(new Found(String.valueOf(letter), argument));
                        break;
                    }
                    g.options.add(new Found(String.valueOf(letter), null));
                }
            } else {
                g.operands.add(a);
            }
        }
        return g;
    }

    /** The options, in the order given. */
    List<Found> options() {
        return options;
    }

    /** The operands, in the order given. */
    List<String> operands() {
        return operands;
    }

    /** Prints qemu-img's two lines for a usage error and returns the failure status. */
    static int report(Session session, UsageError e) {
        session.error(e.getMessage());
        session.err().println("Try '" + session.program() + " --help' for more information");
        return Cli.FAILED;
    }
}
