package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A qemu-img subcommand that changes an image in place, run by both tools on copies of the same image: in the words
 * of a command line, {@code @NAME} names the image, copied into the test's directory as {@code q-FILE} for qemu-img
 * (run there, by that relative name) and {@code i-FILE} for imago (by its absolute path).
 *
 * @param target the image's file name (null: the line names none)
 * @param theirs what qemu-img did
 * @param ours what imago did
 */
record OnCopies(String target, Qemu.Output theirs, Run.Result ours) {
    /**
     * Runs {@code qemu-img SUBCOMMAND words} and {@code imago SUBCOMMAND words} and asserts the same exit status and
     * the same standard output.
     *
     * @param from where the images are
     * @param dir where the copies go and qemu-img runs
     * @param file the file name of {@code @NAME}'s image, from {@code NAME}
     * @param imagoWord how imago is given any other word
     */
    static OnCopies run(Path from, Path dir, String subcommand, String line, String[] words,
            UnaryOperator<String> file, UnaryOperator<String> imagoWord) throws IOException {
        List<Object> q = new ArrayList<>(List.of(Qemu.img(), subcommand));
        List<String> m = new ArrayList<>(List.of(subcommand));
        String target = null;
        for (String word : words) {
            if (word.startsWith("@")) {
                target = file.apply(word.substring(1));
                Files.copy(from.resolve(target), dir.resolve("q-" + target));
                Files.copy(from.resolve(target), dir.resolve("i-" + target));
                q.add("q-" + target);
                m.add(dir.resolve("i-" + target).toString());
            } else {
                q.add(word);
                m.add(imagoWord.apply(word));
            }
        }
        Qemu.Output theirs = Qemu.run(dir, q.toArray());
        Run.Result ours = imago(m.toArray(String[]::new));
        assertEquals(theirs.status(), ours.status(), line + ": " + theirs.err() + " / " + ours.err());
        assertEquals(theirs.out(), ours.out(), line);
        return new OnCopies(target, theirs, ours);
    }
}
