package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Runs one qemu-io command line through qemu-io and through imago invoked as {@code qemu-io} (as a symlink to the
 * launcher runs it), each on its own copy of an image, and asserts that they agree: exit status, standard output
 * with the timings masked, standard error, and afterwards the images' contents ({@code qemu-img compare}),
 * allocation ({@code qemu-img map --output=json}) and, for qcow2, {@code qemu-img check}.
 */
final class QemuIoDifferential {
    /** The timing part of qemu-io's statistics line ({@code 64 KiB, 1 ops; 00.00 sec (...)}). */
    private static final Pattern TIMING = Pattern.compile("(?m)^(.*, \\d+ ops; ).*$");
    /** The timing part of its machine-readable line ({@code -C}: {@code bytes,ops,time,bytes/sec,ops/sec}). */
    private static final Pattern MACHINE_TIMING = Pattern.compile("(?m)^(.*?\\d+,\\d+,)\\d+:\\d\\d:\\d\\d\\.\\d\\d,.*$");
    /** Where a command names the image: replaced by each side's own copy. */
    static final String IMAGE = "IMG";

    private QemuIoDifferential() {
    }

    /**
     * The two copies of an image, their format, and whether their allocation ({@code qemu-img map}) must be the same
     * too, not just their contents.
     */
    record Image(Path theirs, Path ours, String format, boolean sameAllocation) {
        /** Copies whose allocation must be the same. */
        Image(Path theirs, Path ours, String format) {
            this(theirs, ours, format, true);
        }
    }

    /**
     * Runs {@code qemu-io OPTIONS [-c COMMAND]... [IMAGE]} both ways and asserts they agree.
     *
     * @param image the two copies, or {@code null} for a command line without a file (commands may still name
     *     {@link #IMAGE})
     * @param onCommandLine whether the image is named on the command line (else only by the commands)
     * @param options qemu-io's options
     * @param commands the commands
     * @param interactive whether the commands are typed on standard input rather than given with {@code -c}
     */
    static void agree(Path dir, Image image, boolean onCommandLine, List<String> options, List<String> commands,
            boolean interactive) throws Exception {
        Outputs out = outputs(dir, image, onCommandLine, options, commands, interactive);
        assertEquals(out.theirs(), out.ours(), options + " " + commands + (interactive ? " typed" : ""));
    }

    /** Both tools' standard output, normalised (timings and names masked). */
    record Outputs(String theirs, String ours) {
    }

    /**
     * Runs {@code commands} through qemu-io and imago as {@link #agree} does and asserts all it asserts but standard
     * output, which it returns for the caller to compare (where qemu-io's order is not fixed).
     */
    static Outputs outputs(Path dir, Image image, boolean onCommandLine, List<String> options, List<String> commands,
            boolean interactive) throws Exception {
        Qemu.Output theirs = runQemuIo(dir, image == null ? null : image.theirs(), onCommandLine, options, commands,
                interactive);
        Path ours = image == null ? null : image.ours();
        List<String> args = arguments(ours, onCommandLine, options, commands, interactive);
        String input = interactive ? typed(ours, commands) : "";
        Run.Result mine = Run.as("qemu-io", input, args.toArray(String[]::new));
        String what = options + " " + commands + (interactive ? " typed" : "");
        assertEquals(theirs.status(), mine.status(), () -> what + "\nqemu-io: " + theirs.err() + theirs.out()
                + "\nimago: " + mine.err() + mine.out());
        assertEquals(normalize(theirs.err(), image, true), normalize(mine.err(), image, false), what);
        if (image != null) {
            sameImages(dir, image, what);
        }
        return new Outputs(normalize(theirs.out(), image, true), normalize(mine.out(), image, false));
    }

    /** Asserts that the two copies hold the same data, allocated alike, and that ours passes qemu-img check. */
    static void sameImages(Path dir, Image image, String what) {
        Qemu.Output compare = Qemu.compare(image.theirs(), image.format(), image.ours(), image.format());
        assertEquals(0, compare.status(), () -> what + ": " + compare.out() + compare.err());
        if (!image.sameAllocation()) {
            return;
        }
        assertEquals(Qemu.ok(dir, Qemu.img(), "map", "--output=json", "-f", image.format(), image.theirs())
                        .replace(image.theirs().toString(), IMAGE),
                Qemu.ok(dir, Qemu.img(), "map", "--output=json", "-f", image.format(), image.ours())
                        .replace(image.ours().toString(), IMAGE), what);
        if (image.format().equals("qcow2")) {
            Qemu.Output check = Qemu.check(image.ours(), "qcow2");
            assertEquals(0, check.status(), () -> what + ": " + check.out() + check.err());
        }
    }

    private static Qemu.Output runQemuIo(Path dir, Path file, boolean onCommandLine, List<String> options,
            List<String> commands, boolean interactive) throws Exception {
        List<Object> command = new ArrayList<>();
        if (interactive) {
            Path input = Files.writeString(dir.resolve("qemu-io.input"), typed(file, commands), StandardCharsets.UTF_8);
            // qemu-io reads the commands from a pipe or file, as a script feeds them
            command.addAll(List.of("sh", "-c", "exec \"$0\" \"$@\" < " + input, Qemu.io()));
        } else {
            command.add(Qemu.io());
        }
        command.addAll(arguments(file, onCommandLine, options, commands, interactive));
        return Qemu.run(dir, command.toArray());
    }

    private static List<String> arguments(Path file, boolean onCommandLine, List<String> options,
            List<String> commands, boolean interactive) {
        List<String> args = new ArrayList<>(options);
        if (!interactive) {
            for (String c : commands) {
                args.add("-c");
                args.add(named(c, file));
            }
        }
        if (onCommandLine) {
            args.add(file.toString());
        }
        return args;
    }

    private static String typed(Path file, List<String> commands) {
        StringBuilder sb = new StringBuilder();
        commands.forEach(c -> sb.append(named(c, file)).append('\n'));
        return sb.toString();
    }

    private static String named(String command, Path file) {
        return file == null ? command : command.replace(IMAGE, file.toString());
    }

    /** Output with the timings masked and the side's image called {@link #IMAGE}. */
    private static String normalize(String output, Image image, boolean theirs) {
        String s = MACHINE_TIMING.matcher(TIMING.matcher(output).replaceAll("$1")).replaceAll("$1");
        if (image != null) {
            Path p = theirs ? image.theirs() : image.ours();
            s = s.replace(p.toString(), IMAGE).replace(p.getFileName().toString(), IMAGE);
        }
        return s;
    }
}
