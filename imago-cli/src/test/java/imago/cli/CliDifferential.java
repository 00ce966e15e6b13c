package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Runs one {@code qemu-img} command line and the same through {@code imago}, each writing its own output image
 * ({@code OUT} in the line becomes {@code qemu.out} and {@code imago.out}), and compares what they print, their
 * exit statuses and, when both made one, the output images: contents ({@code qemu-img compare}), allocation
 * ({@code qemu-img map --output=json}) and {@code qemu-img check}.
 */
final class CliDifferential {
    private static final Pattern WORD = Pattern.compile(" ");
    private static final Pattern MODULE_NOTICE = Pattern.compile("(?m)^qemu: module block-block-dmg-\\w+ not found.*\n");

    private final Path dir;

    /** @param dir where the images are; words of a line naming a file there are made absolute */
    CliDifferential(Path dir) {
        this.dir = dir;
    }

    /** What a line did through both tools. */
    record Outcome(Qemu.Output qemu, Run.Result imago, Path qemuOut, Path imagoOut) {
    }

    /**
     * Runs {@code qemu-img SUBCOMMAND line} and {@code imago SUBCOMMAND line}, and asserts they agree.
     *
     * @param line the arguments, split at spaces; {@code OUT} is the output image, and a word that names a file
     *     in the directory (alone, or after {@code =}) is passed as its absolute path
     * @param outputFormat the output image's format, for the image comparisons
     */
    Outcome agree(String subcommand, String line, String outputFormat) throws Exception {
        return agree(subcommand, line, outputFormat, out -> { }, true);
    }

    /** Makes an output image before a tool runs (for commands that write into an existing one). */
    interface Preparation {
        /** Makes the file {@code out}. */
        void prepare(Path out) throws Exception;
    }

    /**
     * As {@link #agree(String, String, String)}, with each output image made by {@code before} first, and the maps'
     * host offsets compared only if {@code sameLayout} (not when the order of writes is left to chance).
     */
    Outcome agree(String subcommand, String line, String outputFormat, Preparation before, boolean sameLayout)
            throws Exception {
        Path qemuOut = dir.resolve("qemu.out");
        Path imagoOut = dir.resolve("imago.out");
        Files.deleteIfExists(qemuOut);
        Files.deleteIfExists(imagoOut);
        before.prepare(qemuOut);
        Qemu.Output theirs = Qemu.runImg(dir, command(subcommand, line, qemuOut));
        before.prepare(imagoOut);
        Run.Result mine = Run.imago(command(subcommand, line, imagoOut));
        String what = subcommand + " " + line;
        assertEquals(theirs.status(), mine.status(), () -> what + "\nqemu-img: " + theirs.err() + "\nimago: "
                + mine.err());
        assertEquals(theirs.out().replace(qemuOut.toString(), "OUT"), mine.out().replace(imagoOut.toString(), "OUT"),
                what);
        assertEquals(normalize(theirs.err(), "qemu-img", qemuOut), normalize(mine.err(), "imago", imagoOut), what);
        assertEquals(Files.exists(qemuOut), Files.exists(imagoOut), what + ": output image made");
        if (theirs.status() == 0 && Files.exists(qemuOut)) {
            if (outputFormat.equals("raw")) {
                assertEquals(Files.size(qemuOut), Files.size(imagoOut), what + ": file size");
            }
            Qemu.Output compared = Qemu.compare(qemuOut, outputFormat, imagoOut, outputFormat);
            assertEquals(0, compared.status(), () -> what + ": " + compared.out() + compared.err());
            if (sameLayout) {
                assertEquals(Qemu.map(qemuOut, outputFormat), Qemu.map(imagoOut, outputFormat), what + ": map");
            }
            if (outputFormat.equals("qcow2")) {
                Qemu.Output checked = Qemu.check(imagoOut, outputFormat);
                assertEquals(0, checked.status(), () -> what + ": " + checked.out() + checked.err());
            }
        }
        return new Outcome(theirs, mine, qemuOut, imagoOut);
    }

    /**
     * The arguments of {@code SUBCOMMAND line} as {@link #agree} passes them to either tool: the line split at spaces,
     * {@code OUT} replaced by {@code out}, and a word naming a file in the directory (alone, or after {@code =}) by
     * its absolute path.
     */
    String[] command(String subcommand, String line, Path out) {
        List<String> c = new ArrayList<>(List.of(subcommand));
        if (!line.isEmpty()) {
            for (String word : WORD.split(line)) {
                c.add(absolute(word, out));
            }
        }
        return c.toArray(String[]::new);
    }

    private String absolute(String word, Path out) {
        int eq = word.indexOf('=');
        String prefix = eq < 0 ? "" : word.substring(0, eq + 1);
        String name = word.substring(prefix.length());
        if (name.equals("OUT") || name.endsWith("=OUT")) {
            return prefix + name.substring(0, name.length() - 3) + out;
        }
        if (!name.isEmpty() && !name.startsWith("-") && Files.exists(dir.resolve(name))) {
            return prefix + dir.resolve(name);
        }
        return word;
    }

    /**
     * qemu-img's messages without Debian's notice, at every dmg open, that the optional bzip2/lzfse modules are not
     * installed: no answer of qemu-img's, and imago needs no modules.
     */
    static String withoutModuleNotice(String err) {
        return MODULE_NOTICE.matcher(err).replaceAll("");
    }

    /** Messages with the program's name and the output's file name taken out. */
    private static String normalize(String err, String program, Path out) {
        return withoutModuleNotice(err).replace(out.toString(), "OUT").replace(program + ": ", "PROGRAM: ")
                .replace("'" + program + " ", "'PROGRAM "); // hints naming the tool: 'qemu-img --help'
    }
}
