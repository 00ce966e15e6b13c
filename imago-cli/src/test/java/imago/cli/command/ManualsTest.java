package imago.cli.command;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The man pages and the completion script the distribution ships, made from the command's model. */
class ManualsTest {
    @TempDir
    Path dir;

    @Test
    void aPageForTheCommandAndEachSubcommandAndACompletionScript() throws IOException {
        Manuals.main(new String[] {dir.toString(), "9.8.7"});
        Set<String> pages;
        try (Stream<Path> files = Files.list(dir.resolve("man/man1"))) {
            pages = files.map(p -> p.getFileName().toString()).collect(Collectors.toCollection(TreeSet::new));
        }
        Set<String> expected = new TreeSet<>();
        expected.add("imago.1");
        for (ImagoCommand.Subcommand s : ImagoCommand.SUBCOMMANDS) {
            if (!s.name().equals("help")) {
                expected.add("imago-" + s.name() + ".1");
            }
        }
        assertEquals(expected, pages);

        String top = Files.readString(dir.resolve("man/man1/imago.1"));
        assertTrue(top.startsWith(".TH IMAGO 1 \"\" \"imago 9.8.7\""), top);
        assertTrue(top.contains(".B convert\n"), top);
        assertTrue(top.contains(".BR imago\\-info (1)"), top);
        String info = Files.readString(dir.resolve("man/man1/imago-info.1"));
        assertTrue(info.contains(".SH NAME\nimago\\-info \\- Shows an image's format, sizes and backing file, as qemu"),
                info);
        assertTrue(info.contains(".B \\-\\-backing\\-chain\nShow every image of the backing chain."), info);
        assertTrue(info.contains(".B \\-f=FMT\nThe image format"), info);
        for (String line : info.split("\n")) { // no text line that troff would take for a request
            assertTrue(!line.startsWith(".") || line.matches("\\.(TH|SH|PP|TP|B|BR|nf|fi)( .*)?"), line);
        }

        String completion = Files.readString(dir.resolve("bash-completion/completions/imago"));
        assertTrue(completion.contains("complete -F _complete_imago"), completion);
        assertTrue(completion.contains("--backing-chain"), completion);
    }

    @Test
    void escapeKeepsTextLiteral() {
        assertEquals("\\&.x a\\-b \\ec\n\\&'q", Manuals.escape(".x a-b \\c\n'q"));
    }
}
