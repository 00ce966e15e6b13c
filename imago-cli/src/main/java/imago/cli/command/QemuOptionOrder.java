package imago.cli.command;

import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * qemu-img's getopt loop replayed over a subcommand's arguments, to find the first problem of a command line in
 * qemu-img 7.2's order: options are read from left to right, and at each one an unknown option, a missing argument
 * or a value the loop checks ({@link QemuOptionChecks}) stops the command; only after the loop does it count the
 * file names and check the rest. picocli finds the same problems in its own order (missing file names before unknown
 * options, option values when the command runs), so the command line reports what this finds first.
 */
final class QemuOptionOrder {

    /** The first problem: qemu-img's usage words (two lines with the help hint), or a command failure. */
    sealed interface Problem {
    }

    /** An unknown option or an option without its argument, worded as qemu-img's usage errors. */
    record Usage(String words) implements Problem {
    }

    /** A value the getopt loop refuses, reported as the command's run reports it. */
    record Refused(CliException failure) implements Problem {
    }

    private QemuOptionOrder() {
    }

    /**
     * The first problem the getopt loop meets in {@code args} (the subcommand's arguments, after its name), or null
     * if it meets none (the problem, if any, is one qemu-img finds after its loop).
     */
    static Problem firstProblem(CommandSpec spec, Object command, List<String> args) {
        QemuOptionChecks checks = command instanceof QemuOptionChecks c ? c : null;
        List<String> before = new ArrayList<>();
        // the word getopt's argv[optind - 1] holds: the file name last stepped over (getopt moves those behind the
        // options read so far, so it is the one right before the current word), else the word before
        String lastFile = null;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals("--")) {
                return null;
            }
            if (!a.startsWith("-") || a.equals("-")) {
                lastFile = a;
                continue; // getopt moves file names after the options
            }
            if (a.startsWith("--")) {
                int eq = a.indexOf('=');
                OptionSpec opt = spec.findOption(eq < 0 ? a : a.substring(0, eq));
                if (opt == null) {
                    return new Usage("unrecognized option '" + a + "'");
                }
                if (opt.usageHelp() || opt.versionHelp()) {
                    return null; // qemu-img prints its help there
                }
                String value = null;
                if (eq >= 0) {
                    value = a.substring(eq + 1);
                } else if (takesArgument(opt)) {
                    if (i + 1 == args.size()) {
                        return new Usage("missing argument for option '" + a + "'");
                    }
                    value = args.get(++i);
                }
                Problem p = check(checks, opt, value, before);
                if (p != null) {
                    return p;
                }
                continue;
            }
            for (int k = 1; k < a.length(); k++) {
                OptionSpec opt = spec.findOption("-" + a.charAt(k));
                if (opt == null) {
                    // qemu-img names the word getopt has stepped past: this one at its last letter, else the one
                    // before it (the command's name before the first)
                    String named = k + 1 == a.length() ? a : lastFile != null ? lastFile : i == 0 ? spec.name()
                            : args.get(i - 1);
                    return new Usage("unrecognized option '" + named + "'");
                }
                if (opt.usageHelp() || opt.versionHelp()) {
                    return null;
                }
                String value = null;
                if (takesArgument(opt)) {
                    if (k + 1 < a.length()) {
                        value = a.substring(k + 1);
                    } else if (i + 1 == args.size()) {
                        return new Usage("missing argument for option '-" + a.charAt(k) + "'");
                    } else {
                        value = args.get(++i);
                    }
                    k = a.length();
                }
                Problem p = check(checks, opt, value, before);
                if (p != null) {
                    return p;
                }
            }
        }
        return null;
    }

    private static boolean takesArgument(OptionSpec opt) {
        return opt.arity().min() > 0;
    }

    private static Problem check(QemuOptionChecks checks, OptionSpec opt, String value, List<String> before) {
        String name = opt.longestName();
        try {
            if (checks != null) {
                checks.checkOption(name, value, List.copyOf(before));
            }
        } catch (CliException e) {
            return new Refused(e);
        }
        before.add(name);
        return null;
    }
}
