package imago.cli.command;

import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Parses the plain command lines of {@code info} and {@code map}, the ones scripts call once per image
 * ({@code imago info --output=json x.qcow2}), without picocli; {@link Cli} runs what it makes. Building
 * picocli's model of even one subcommand (reflection over the command class and its mixins, a proxy class
 * spun per annotation type, which no AOT cache of JDK 25 keeps) costs ~100 ms, more than twice the JVM's
 * own start-up.
 *
 * <p>Only a command line made entirely of these words is taken: {@code info} or {@code map} first; then, in
 * any order, the one file and the command's options, each option a word of its own ({@code -f FMT},
 * {@code --output json} or {@code --output=json}, {@code -U}, {@code --force-share}; {@code --backing-chain}
 * for info; {@code -s}/{@code --start-offset} and {@code -l}/{@code --max-length} for map), the last of a
 * repeated option winning, as with picocli. No word may be empty, and no file or option value may start
 * with {@code -}. Everything else goes to picocli: help, {@code --version}, the global options, clustered
 * short options, {@code --}, no file or a second one, and so every usage error. The command then runs as
 * after picocli's parse (the same command object, and the same failure handling in {@link Cli}), so the
 * output, messages and exit status are the same, which {@code DirectRunTest} checks against picocli for
 * each form taken.
 */
final class DirectRun {
    /** The options of info taken here, each with whether it takes a value. */
    private static final Map<String, Boolean> INFO_OPTIONS = Map.of("-f", true, "--output", true, "-U", false,
            "--force-share", false, "--backing-chain", false);
    /** The options of map taken here, each with whether it takes a value. */
    private static final Map<String, Boolean> MAP_OPTIONS = Map.of("-f", true, "--output", true, "-U", false,
            "--force-share", false, "-s", true, "--start-offset", true, "-l", true, "--max-length", true);

    private DirectRun() {
    }

    /** The command {@code args} ask for, with its options set, or {@code null} if picocli must parse them. */
    static Callable<Integer> parse(Session session, String... args) {
        if (args.length < 2 || !args[0].equals("info") && !args[0].equals("map")) {
            return null;
        }
        boolean map = args[0].equals("map");
        Map<String, Boolean> options = map ? MAP_OPTIONS : INFO_OPTIONS;
        String file = null;
        String format = null;
        String output = "human";
        String start = null;
        String length = null;
        boolean chain = false;
        boolean forceShare = false;
        boolean lengthFirst = false;
        for (int i = 1; i < args.length; i++) {
            String word = args[i];
            if (plain(word)) {
                if (file != null) {
                    return null; // a second operand: picocli's usage error
                }
                file = word;
                continue;
            }
            int eq = word.startsWith("--") ? word.indexOf('=') : -1;
            String name = eq > 0 ? word.substring(0, eq) : word;
            Boolean takesValue = options.get(name);
            if (takesValue == null || !takesValue && eq > 0) {
                return null; // not one of ours (or empty, clustered, -fFMT), or a flag given a value
            }
            String value = null;
            if (takesValue) {
                value = eq > 0 ? word.substring(eq + 1) : i + 1 < args.length ? args[++i] : "";
                if (!plain(value)) {
                    return null;
                }
            }
            switch (name) {
                case "-f" -> format = value;
                case "--output" -> output = value;
                case "-s", "--start-offset" -> start = value;
                case "-l", "--max-length" -> {
                    length = value;
                    lengthFirst |= start == null;
                }
                case "--backing-chain" -> chain = true;
                default -> forceShare = true; // -U, --force-share
            }
        }
        if (file == null || start != null && lengthFirst) {
            return null; // map's length before its start: the picocli path checks them in the order given, as qemu-img
        }
        FormatOption f = new FormatOption(format);
        OutputOption o = new OutputOption(output);
        ForceShareOption u = new ForceShareOption(forceShare);
        ImageFile image = new ImageFile(file);
        return map ? new MapCommand(session, f, o, start, length, u, image)
                : new InfoCommand(session, f, o, chain, u, image);
    }

    /** Whether {@code word} is neither empty nor starts with {@code -}: an operand or option value, never an option. */
    private static boolean plain(String word) {
        return !word.isEmpty() && !word.startsWith("-");
    }
}
