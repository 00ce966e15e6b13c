package imago.cli.command;

import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Parses the plain command lines of {@code convert} without picocli, as {@link DirectRun} does those of
 * {@code info} and {@code map}: picocli's model of the command (reflection over its ~25 options, a proxy class
 * spun per annotation type, the code the JIT compiles for both) cost a cold {@code imago convert} ~50 ms of wall
 * time and ~100 ms of CPU, about a ninth of a 512 MiB qcow2 to raw copy.
 *
 * <p>Only a command line made entirely of these words is taken: {@code convert} first; then, in any order, the
 * files (at least two) and {@code convert}'s own options, each option a word of its own followed, if it takes one,
 * by its value ({@code -O raw}, never {@code -Oraw} or {@code -O=raw}); a value option given again replaces its
 * value (but {@code -o}, which adds one), as with picocli; a flag may be given once. No word may be empty, and no
 * file or value may start with {@code -}. Everything else goes to picocli: help, {@code --version}, the global
 * options ({@code --object}, {@code --image-opts}, {@code --debug}, {@code --gate}), clustered short options,
 * {@code --}, fewer than two files, and so every usage error. The command then runs as after picocli's parse
 * (the same command object), which {@code DirectConvertTest} checks against picocli.
 */
final class DirectConvert {
    /** The options of convert taken here, each with whether it takes a value (all of {@link ConvertCommand}'s). */
    static final Map<String, Boolean> OPTIONS = Map.ofEntries(
            Map.entry("-f", true), Map.entry("-O", true), Map.entry("-o", true), Map.entry("-S", true),
            Map.entry("-t", true), Map.entry("-T", true), Map.entry("-B", true), Map.entry("-F", true),
            Map.entry("-l", true), Map.entry("-s", true), Map.entry("-m", true), Map.entry("-r", true),
            Map.entry("-c", false), Map.entry("-W", false), Map.entry("-p", false), Map.entry("-q", false),
            Map.entry("-U", false), Map.entry("--force-share", false), Map.entry("-n", false),
            Map.entry("--target-is-zero", false), Map.entry("--target-image-opts", false), Map.entry("-C", false),
            Map.entry("--salvage", false), Map.entry("--bitmaps", false), Map.entry("--skip-broken-bitmaps", false));

    private DirectConvert() {
    }

    /** The convert command {@code args} ask for, with its options set, or {@code null} if picocli must parse them. */
    static ConvertCommand parse(Session session, String... args) {
        if (args.length < 3 || !args[0].equals("convert")) {
            return null;
        }
        ConvertCommand command = new ConvertCommand(session);
        Set<String> flags = new HashSet<>();
        int files = 0;
        for (int i = 1; i < args.length; i++) {
            String word = args[i];
            if (plain(word)) {
                command.file(word);
                files++;
                continue;
            }
            Boolean takesValue = OPTIONS.get(word);
            if (takesValue == null) {
                return null; // not one of ours: empty, clustered, -OFMT, --name=value, a global option, help
            }
            if (!takesValue) {
                if (!flags.add(word.equals("--force-share") ? "-U" : word)) {
                    return null;
                }
                command.option(word, null);
                continue;
            }
            if (i + 1 == args.length || !plain(args[i + 1])) {
                return null; // picocli's missing argument, or a value it might read as an option
            }
            command.option(word, args[++i]);
        }
        return files >= 2 ? command : null;
    }

    /** Whether {@code word} is neither empty nor starts with {@code -}: a file or option value, never an option. */
    private static boolean plain(String word) {
        return !word.isEmpty() && !word.startsWith("-");
    }
}
