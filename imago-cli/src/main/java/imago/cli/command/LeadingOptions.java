package imago.cli.command;

import java.util.ArrayList;
import java.util.List;

/**
 * Reads the words before the subcommand as qemu-img reads them, before any picocli model is built: qemu-img's main
 * loop is getopt with {@code -h}/{@code --help}, {@code -V}/{@code --version} and {@code -T}/{@code --trace PATTERN}
 * only (long names may be shortened, {@code --he}), and refuses anything else there with its two lines
 * ({@code unrecognized option '-f'}, {@code Try 'PROGRAM --help' for more information}) and status 1, so
 * {@code -f raw info x} or {@code --object ... info x} fail as they do with qemu-img. imago's own {@code --gate} and
 * {@code --debug} are taken there too, and passed on to picocli, which reads and checks them.
 *
 * <p>Like getopt, the first of {@code -h} and {@code -V} wins and ends the command, whatever follows. {@code -T}
 * takes the next word whatever it is, and is otherwise ignored: imago has no trace events. A cluster with an unknown
 * letter before its end ({@code -xh}) is named by the word before it (the program's name for the first word), as
 * getopt has not stepped past the cluster when qemu-img prints it. Options and no command end with status 0 and
 * nothing printed, as with qemu-img ({@code --}, {@code -T x}); no argument at all and an unknown command word are
 * qemu-img's usage errors. imago's {@code help} command is no qemu-img command and stays.
 */
final class LeadingOptions {
    /** Where the run ends, or {@code null} if it goes on with {@link #rest}. */
    final Integer status;
    /** Whether help was asked for. */
    final boolean help;
    /** Whether the version was asked for. */
    final boolean version;
    /** The command line for picocli: imago's own options from before the command, the command and its arguments. */
    final String[] rest;

    private LeadingOptions(Integer status, boolean help, boolean version, String[] rest) {
        this.status = status;
        this.help = help;
        this.version = version;
        this.rest = rest;
    }

    private static LeadingOptions end(int status) {
        return new LeadingOptions(status, false, false, null);
    }

    private static LeadingOptions help() {
        return new LeadingOptions(null, true, false, null);
    }

    private static LeadingOptions version() {
        return new LeadingOptions(null, false, true, null);
    }

    /** Reads {@code args}, reporting qemu-img's usage errors to {@code session}. */
    static LeadingOptions read(Session session, String... args) {
        if (args.length == 0) {
            return usage(session, "Not enough arguments");
        }
        List<String> kept = new ArrayList<>();
        int i = 0;
        while (i < args.length) {
            String word = args[i];
            if (word.equals("--")) {
                i++;
                break;
            }
            if (word.equals("--debug") || word.startsWith("--gate=")) {
                kept.add(word);
            } else if (word.equals("--gate")) {
                kept.add(word);
                if (i + 1 < args.length && ImagoCommand.subcommand(args[i + 1]) == null) {
                    kept.add(args[++i]); // its value; picocli says a command name is none
                }
            } else if (word.startsWith("--")) {
                int eq = word.indexOf('=');
                String option = longOption(word.substring(2, eq < 0 ? word.length() : eq));
                if (option == null || eq >= 0 && !option.equals("trace")) {
                    return usage(session, "unrecognized option '" + word + "'");
                }
                if (!option.equals("trace")) {
                    return option.equals("help") ? help() : version();
                }
                if (eq < 0 && ++i == args.length) {
                    return usage(session, "missing argument for option '" + word + "'");
                }
            } else if (word.length() > 1 && word.charAt(0) == '-') {
                for (int j = 1; j < word.length(); j++) {
                    char c = word.charAt(j);
                    if (c == 'h') {
                        return help();
                    }
                    if (c == 'V') {
                        return version();
                    }
                    boolean last = j + 1 == word.length();
                    if (c != 'T') {
                        String named = last ? word : i == 0 ? session.program() : args[i - 1];
                        return usage(session, "unrecognized option '" + named + "'");
                    }
                    if (last && ++i == args.length) {
                        return usage(session, "missing argument for option '" + word + "'");
                    }
                    break; // -T's value: the rest of the word or the next word
                }
            } else {
                break; // the command
            }
            i++;
        }
        if (i == args.length) {
            // qemu-img ends quietly when its options leave no command; imago's own options go to picocli, which checks
            // them and asks for a command
            return kept.isEmpty() ? end(Cli.OK) : new LeadingOptions(null, false, false, kept.toArray(String[]::new));
        }
        if (ImagoCommand.subcommand(args[i]) == null) {
            return usage(session, "Command not found: " + args[i]);
        }
        for (int k = i; k < args.length; k++) {
            kept.add(args[k]);
        }
        return new LeadingOptions(null, false, false, kept.toArray(String[]::new));
    }

    /** qemu-img's long option that {@code name} names or abbreviates, or {@code null}. */
    private static String longOption(String name) {
        if (name.isEmpty()) {
            return null;
        }
        for (String option : new String[] {"help", "version", "trace"}) {
            if (option.startsWith(name)) {
                return option; // no two share a first letter, so no abbreviation is ambiguous
            }
        }
        return null;
    }

    private static LeadingOptions usage(Session session, String message) {
        session.error(message);
        session.err().println("Try '" + session.program() + " --help' for more information");
        return end(Cli.FAILED);
    }
}
