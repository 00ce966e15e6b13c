package imago.cli.command;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.Command;

/** The table of subcommands, and which of them a command line makes picocli build. */
class SubcommandsTest {

    @Test
    void namesAreThoseOfTheCommandAnnotations() {
        for (ImagoCommand.Subcommand s : ImagoCommand.SUBCOMMANDS) {
            assertEquals(s.type().getAnnotation(Command.class).name(), s.name(), s.type().getName());
            assertEquals(s, ImagoCommand.subcommand(s.name()));
        }
        assertNull(ImagoCommand.subcommand("bogus"));
    }

    @Test
    void everyCommandClassIsInTheTable() throws IOException, URISyntaxException, ClassNotFoundException {
        // the classes directory of this package: a new subcommand must be listed to be reachable
        Path classes = Path.of(ImagoCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Path pkg = classes.resolve("imago/cli/command");
        assertTrue(Files.isDirectory(pkg), pkg.toString());
        List<Class<?>> commands = new ArrayList<>();
        try (Stream<Path> files = Files.list(pkg)) {
            for (Path f : files.filter(f -> f.getFileName().toString().endsWith(".class")).sorted().toList()) {
                String name = f.getFileName().toString();
                Class<?> c = Class.forName("imago.cli.command." + name.substring(0, name.length() - 6), false,
                        ImagoCommand.class.getClassLoader());
                if (c.isAnnotationPresent(Command.class) && c != ImagoCommand.class && c.getEnclosingClass() == null) {
                    commands.add(c);
                }
            }
        }
        assertTrue(commands.size() >= 12, commands.toString());
        for (Class<?> c : commands) {
            assertEquals(c, ImagoCommand.subcommand(c.getAnnotation(Command.class).name()).type(), c.getName());
        }
    }

    @Test
    void onlyTheNamedSubcommandIsBuilt() {
        assertEquals(List.of("info"), names("info", "x.qcow2"));
        assertEquals(List.of("map"), names("--debug", "--gate", "confined", "map", "--output=json", "x"));
        assertEquals(List.of("convert"), names("--gate=deny", "convert", "help", "-h"));
        assertEquals(List.of("io"), names("-V", "io", "x"));
    }

    @Test
    void noneWithoutACommandWord() {
        assertEquals(List.of(), names());
        assertEquals(List.of(), names("--version"));
        assertEquals(List.of(), names("--debug", "-V"));
        assertEquals(List.of(), names("--", "info", "x")); // no command after --: picocli says so
        assertEquals(List.of(), names("--gate", "deny"));
    }

    @Test
    void allForHelpOrAnUnknownWord() {
        List<String> all = ImagoCommand.SUBCOMMANDS.stream().map(ImagoCommand.Subcommand::name).toList();
        assertEquals(all, names("--help"));
        assertEquals(all, names("-h"));
        assertEquals(all, names("-Vh"));
        assertEquals(all, names("-h", "info")); // imago's own help, which lists them
        assertEquals(all, names("--gate", "confined", "--help"));
        assertEquals(all, names("help", "info"));
        assertEquals(all, names("bogus"));
    }

    @Test
    void aCommandNameIsNoGateValue() {
        // picocli refuses it as the option's value, and must know it as a command to say so
        assertEquals(List.of("info"), names("--gate", "info", "x"));
        assertEquals(ImagoCommand.SUBCOMMANDS.size(), names("--gate", "help").size());
    }

    private static List<String> names(String... args) {
        return Cli.subcommandsFor(args).stream().map(ImagoCommand.Subcommand::name).toList();
    }
}
