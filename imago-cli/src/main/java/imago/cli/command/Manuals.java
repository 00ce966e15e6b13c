package imago.cli.command;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

/**
 * Writes the documents the distribution ships, from the same picocli model the command parses with, so
 * that they cannot drift from it: a bash completion script ({@code bash-completion/completions/imago},
 * picocli's {@link AutoComplete}) and a troff man page for {@code imago} and each subcommand
 * ({@code man/man1/imago.1}, {@code man/man1/imago-info.1}, ...), laid out as under {@code /usr/share}. Run
 * by the build of imago-dist: {@code java -m imago.cli/imago.cli.command.Manuals SHAREDIR VERSION}.
 */
public final class Manuals {
    private Manuals() {
    }

    /**
     * Writes the completion script and the man pages under {@code args[0]}.
     *
     * @param args the output directory and the version to print in the pages' headers
     * @throws IOException when a file cannot be written
     */
    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            throw new IllegalArgumentException("usage: Manuals SHAREDIR VERSION");
        }
        Path out = Path.of(args[0]);
        CommandLine top = commandLine();
        Path completions = Files.createDirectories(out.resolve("bash-completion/completions"));
        Files.writeString(completions.resolve("imago"), AutoComplete.bash("imago", top), StandardCharsets.UTF_8);
        Path man1 = Files.createDirectories(out.resolve("man/man1"));
        Files.writeString(man1.resolve("imago.1"), page(top, args[1]), StandardCharsets.UTF_8);
        for (CommandLine sub : top.getSubcommands().values()) {
            String name = sub.getCommandName();
            if (!name.equals("help")) {
                Files.writeString(man1.resolve("imago-" + name + ".1"), page(sub, args[1]), StandardCharsets.UTF_8);
            }
        }
    }

    /** The whole command tree, as {@code imago --help} builds it. */
    static CommandLine commandLine() {
        PrintStream devNull = new PrintStream(PrintStream.nullOutputStream(), false, StandardCharsets.UTF_8);
        return Cli.commandLine(new Session("imago", devNull, devNull), "--help");
    }

    /** The man page of one command, in the man(7) macros. */
    static String page(CommandLine cl, String version) {
        CommandSpec spec = cl.getCommandSpec();
        String name = spec.qualifiedName("-");
        StringBuilder t = new StringBuilder();
        t.append(".TH ").append(name.toUpperCase(Locale.ROOT)).append(" 1 \"\" \"imago ")
                .append(escape(version)).append("\" \"imago manual\"\n");
        t.append(".SH NAME\n").append(escape(name)).append(" \\- ")
                .append(escape(firstSentence(join(spec.usageMessage().description())))).append('\n');
        t.append(".SH SYNOPSIS\n.nf\n")
                .append(escape(cl.getHelp().synopsis(0).strip().replaceFirst("^Usage: ", ""))).append("\n.fi\n");
        t.append(".SH DESCRIPTION\n").append(paragraphs(join(spec.usageMessage().description())));
        if (!spec.positionalParameters().isEmpty()) {
            t.append(".SH ARGUMENTS\n");
            for (PositionalParamSpec p : spec.positionalParameters()) {
                item(t, p.paramLabel(), p);
            }
        }
        t.append(".SH OPTIONS\n");
        for (OptionSpec o : spec.options()) {
            if (!o.hidden()) {
                String label = String.join(", ", o.names())
                        + (o.typeInfo().isBoolean() ? "" : "=" + o.paramLabel());
                item(t, label, o);
            }
        }
        if (spec.parent() == null) {
            t.append(".SH COMMANDS\n");
            for (CommandLine sub : cl.getSubcommands().values()) {
                if (!sub.getCommandName().equals("help")) {
                    t.append(".TP\n.B ").append(escape(sub.getCommandName())).append('\n').append(escape(
                            firstSentence(join(sub.getCommandSpec().usageMessage().description())))).append('\n');
                }
            }
        }
        String footer = join(spec.usageMessage().footer()).strip();
        if (!footer.isEmpty()) {
            t.append(".SH NOTES\n").append(paragraphs(footer));
        }
        t.append(".SH SEE ALSO\n");
        List<String> see = new ArrayList<>();
        if (spec.parent() != null) {
            see.add(".BR imago (1)");
        } else {
            for (String sub : cl.getSubcommands().keySet()) {
                if (!sub.equals("help")) {
                    see.add(".BR " + escape("imago-" + sub) + " (1)");
                }
            }
        }
        see.add(".BR qemu\\-img (1)");
        t.append(String.join(",\n", see)).append('\n');
        return t.toString();
    }

    private static void item(StringBuilder t, String label, ArgSpec arg) {
        t.append(".TP\n.B ").append(escape(label)).append('\n').append(escape(join(arg.description()).strip()))
                .append('\n');
    }

    /** picocli's description lines as text: its {@code %n} are line breaks. */
    private static String join(String[] lines) {
        return String.join("\n", lines).replace("%n", "\n").replace("%%", "%");
    }

    private static String firstSentence(String text) {
        String line = text.strip().lines().findFirst().orElse("");
        int end = line.indexOf(". ");
        return end < 0 ? line.replaceAll("\\.$", "") : line.substring(0, end);
    }

    private static String paragraphs(String text) {
        StringBuilder t = new StringBuilder();
        for (String p : text.strip().split("\n\\s*\n")) {
            t.append(".PP\n").append(escape(p.strip())).append('\n');
        }
        return t.toString();
    }

    /** Text as troff reads it literally: backslashes and dashes escaped, no line starting a request. */
    static String escape(String text) {
        StringBuilder t = new StringBuilder();
        for (String line : text.replace("\\", "\\e").replace("-", "\\-").split("\n", -1)) {
            if (!t.isEmpty()) {
                t.append('\n');
            }
            if (line.startsWith(".") || line.startsWith("'")) {
                t.append("\\&");
            }
            t.append(line);
        }
        return t.toString();
    }
}
