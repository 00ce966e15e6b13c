package imago.cli.command;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageLimitException;
import imago.api.OpenGate;
import imago.api.Secrets;
import imago.api.StorageLocation;
import imago.nbd.NbdLocation;
import imago.probe.Imago;
import imago.probe.Opener;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The state of one run of the command: its output streams, the global options, and the file names
 * the user typed, so that messages show those names rather than the absolute paths the library uses.
 */
public final class Session {
    /** Which {@link OpenGate} guards the files that images name. */
    public enum Gate {
        /** Open whatever an image names, as qemu-img does. */
        PERMISSIVE,
        /** Only files inside the top image's directory, and no probing of their formats. */
        CONFINED,
        /** No file that an image names. */
        DENY;

        static Gate parse(String text) {
            for (Gate g : values()) {
                if (g.name().toLowerCase(Locale.ROOT).equals(text)) {
                    return g;
                }
            }
            throw new CliException(null, "Invalid --gate value '" + text + "' (expected permissive, confined or deny)");
        }
    }

    private final String program;
    private final PrintStream out;
    private final PrintStream err;
    private final Map<String, String> typedNames = new LinkedHashMap<>();
    private boolean debug;
    private Gate gate = Gate.PERMISSIVE;
    private String currentFile;
    private final Secrets secrets = Secrets.create();
    private final java.util.List<String> objects = new java.util.ArrayList<>();
    private boolean secretsParsed;
    private boolean imageOpts;
    private boolean unmapsByDefault;

    private final java.io.InputStream in;

    Session(String program, PrintStream out, PrintStream err) {
        this(program, System.in, out, err);
    }

    Session(String program, java.io.InputStream in, PrintStream out, PrintStream err) {
        this.program = program;
        this.in = in;
        this.out = out;
        this.err = err;
    }

    /** Standard input, where {@code io} reads commands when none are given with {@code -c}. */
    java.io.InputStream in() {
        return in;
    }

    /** The name the command was invoked by ({@code imago}, or {@code qemu-img} through a symlink), for messages. */
    public String program() {
        return program;
    }

    /**
     * Separates the reports of a message that qemu-img prints as several ({@code error_report} calls), each of which
     * starts with the program's name; a plain line break inside one report starts a line without it.
     */
    public static final String NEXT_REPORT = "\u001e";

    /**
     * Prints {@code message} on standard error after the program's name, as QEMU's tools print errors
     * ({@code imago: message}); each report of it (see {@link #NEXT_REPORT}) gets the prefix.
     */
    public void error(String message) {
        out.flush();
        err.println(program + ": " + message.replace(NEXT_REPORT, "\n" + program + ": "));
    }

    /** Standard output. */
    public PrintStream out() {
        return out;
    }

    /** Standard error. */
    public PrintStream err() {
        return err;
    }

    boolean debug() {
        return debug;
    }

    void debug(boolean on) {
        debug = on;
    }

    void gate(Gate g) {
        gate = g;
    }

    /** Keeps an {@code --object} argument, parsed when the secrets are first needed (errors then get one line). */
    void object(String argument) {
        objects.add(argument);
    }

    /** The secrets given with {@code --object secret,...}, parsed on first use. */
    Secrets secrets() {
        if (!secretsParsed) {
            for (String o : objects) {
                if (SecretObjects.isSecret(o)) {
                    SecretObjects.add(secrets, o);
                }
            }
            secretsParsed = true;
        }
        return secrets;
    }

    /** The {@code --object} arguments that are not secrets (TLS credentials, for {@code nbd}). */
    java.util.List<String> objects() {
        return objects.stream().filter(o -> !SecretObjects.isSecret(o)).toList();
    }

    void imageOpts(boolean on) {
        imageOpts = on;
    }

    /**
     * Whether the tool discards by default (qemu-io unless {@code -d} says otherwise, qemu-nbd with
     * {@code --discard=unmap}): then an {@code --image-opts} string may ask for {@code detect-zeroes=unmap} without a
     * {@code discard} option of its own, as QEMU's open flags allow.
     */
    void unmapsByDefault(boolean on) {
        unmapsByDefault = on;
    }

    /** The option string {@code typed} ({@code --image-opts}), parsed and checked. */
    ImageOpts imageOpts(String typed) {
        return ImageOpts.parse(typed, unmapsByDefault);
    }

    /** Whether image names are {@code --image-opts} option strings rather than file names. */
    boolean imageOpts() {
        return imageOpts;
    }

    /**
     * {@code opener} with the session's secrets, and the {@code key-secret} of a new image's {@code -o} options,
     * for opening an image this run creates. @return {@code opener}
     */
    Opener withSecrets(Opener opener, Map<String, String> createOptions) {
        opener.secrets(secrets());
        for (String option : new String[] {"key-secret", "encrypt.key-secret"}) {
            // luks names its secret key-secret, qcow2 encrypt.key-secret
            String id = createOptions.get(option);
            if (id != null) {
                opener.option(option, id);
            }
        }
        return opener;
    }

    /** The gate for images whose top file is {@code top}. */
    OpenGate openGate(Path top) {
        return switch (gate) {
            case PERMISSIVE -> OpenGate.permissive();
            case DENY -> OpenGate.denyAll();
            case CONFINED -> {
                Path parent = top.toAbsolutePath().normalize().getParent();
                yield OpenGate.confinedTo(parent == null ? top.toAbsolutePath().getRoot() : parent);
            }
        };
    }

    /**
     * Records a file name the user typed, so that messages about it use that name, and makes it the
     * file that messages without a resource of their own are about. @return its path
     */
    Path file(String typed) {
        Path p = Path.of(typed);
        alias(p, typed);
        currentFile = typed;
        return p;
    }

    /** Makes messages about {@code path} call it {@code typed} (a name stored relative to another file). */
    void alias(Path path, String typed) {
        typedNames.putIfAbsent(path.toAbsolutePath().normalize().toString(), typed);
    }

    /** The file that a message without its own resource is about, or {@code null}. */
    String currentFile() {
        return currentFile;
    }

    /** How the user called {@code resource}, or the resource itself. */
    String display(String resource) {
        if (resource == null) {
            return null;
        }
        return typedNames.getOrDefault(resource, resource);
    }

    /** A message with a leading absolute path of a typed file replaced by the typed name. */
    String rewrite(String message) {
        if (message == null) {
            return null;
        }
        String best = null;
        for (String abs : typedNames.keySet()) {
            if (message.startsWith(abs + ":") && (best == null || abs.length() > best.length())) {
                best = abs;
            }
        }
        return best == null ? message : typedNames.get(best) + message.substring(best.length());
    }

    /** Whether {@code message} starts with the name of a file the library or the user named. */
    boolean namesAFile(String message) {
        if (message == null) {
            return false;
        }
        for (Map.Entry<String, String> e : typedNames.entrySet()) {
            if (message.startsWith(e.getKey() + ":") || message.startsWith(e.getValue() + ":")) {
                return true;
            }
        }
        return message.startsWith("/") && message.indexOf(": ") > 0;
    }

    /**
     * An opener for a file the user typed, after checks that refuse a missing file or a directory with a message
     * naming the file ({@code FILE: Could not open 'FILE': reason}).
     */
    Opener opener(String typed, String format) {
        return opener(typed, format, name -> checkOpenable(name, Path.of(name)));
    }

    /**
     * An opener for an image a qemu-img subcommand opens, after the checks that refuse a missing file or a directory
     * in qemu-img's words ({@code Could not open 'FILE': ...}; {@code writable}: the image is to be opened for
     * writing, which QEMU words otherwise); open it with {@link OpenFailures#open} for qemu-img's words on failure.
     */
    Opener opener(String typed, String format, boolean writable) {
        return opener(typed, format, name -> RegularFileCheck.checkRegularFile(name, writable));
    }

    private Opener opener(String typed, String format, java.util.function.Consumer<String> fileCheck) {
        if (NbdLocation.isUri(typed)) {
            return nbdOpener(typed, format).secrets(secrets());
        }
        ImageOpts opts = null;
        if (imageOpts) {
            opts = imageOpts(typed);
            if (format != null) {
                throw new CliException(null, "--image-opts and --format are mutually exclusive");
            }
            typed = opts.filename();
            format = opts.driver();
        }
        Path path = file(typed);
        fileCheck.accept(typed);
        Opener o = Imago.opener().path(path).gate(openGate(path)).secrets(secrets());
        if (format != null) {
            o.format(format);
        }
        if (opts != null) {
            opts.options().forEach(o::option);
            o.refuseWrites(opts.writeRefusal());
        }
        return o;
    }

    /**
     * An opener for an NBD export the user named by URI. Nothing an image on it names is opened: the gate denies
     * all, and the export's storage resolves no stored name anyway.
     */
    private Opener nbdOpener(String typed, String format) {
        currentFile = typed;
        typedNames.putIfAbsent(typed, typed);
        Opener o;
        try {
            o = Imago.opener().location(NbdLocation.of(typed)).gate(OpenGate.denyAll());
        } catch (IllegalArgumentException e) {
            throw new CliException(typed, "Could not open '" + typed + "': " + e.getMessage());
        }
        if (format != null) {
            o.format(format);
        }
        return o;
    }

    /**
     * The file the user typed: the argument, or with {@code --image-opts} its {@code file.filename}, as QEMU names
     * the file beneath the format (map's file column, the warning about a probed raw image).
     */
    String fileName(String typed) {
        return imageOpts && !NbdLocation.isUri(typed) ? imageOpts(typed).filename() : typed;
    }

    /** Whether the format of the image the user typed is probed: no {@code -f}, and no {@code driver=}. */
    boolean probesFormat(String typed, String format) {
        return format == null && (!imageOpts || NbdLocation.isUri(typed) || imageOpts(typed).driver() == null);
    }

    /**
     * The name {@code info} shows for the image the user typed: the name typed, for an NBD export the name of its
     * storage, which is qemu's form of the URI ({@code nbd+unix://?socket=...}), and with {@code --image-opts} the
     * name qemu gives the options ({@link ImageOpts#shownName}).
     */
    String shownName(String typed, Image top) throws IOException {
        if (NbdLocation.isUri(typed)) {
            return top.info().filename();
        }
        return imageOpts ? imageOpts(typed).shownName(top.format()) : typed;
    }

    /**
     * Creates an image at a file the user typed, with qemu-img's "Could not create" wording when the
     * file system refuses.
     *
     * @throws IOException if the format or storage fails otherwise
     */
    void create(String typed, Path path, String format, CreateOptions options) throws IOException {
        create(typed, path, format, options, true);
    }

    /** As {@link #create(String, Path, String, CreateOptions)}, synced to stable media only if {@code durable}. */
    void create(String typed, Path path, String format, CreateOptions options, boolean durable) throws IOException {
        if (Files.isDirectory(path)) {
            throw new CliException(typed, "Could not create '" + typed + "': Is a directory");
        }
        try {
            Imago.create(StorageLocation.file(path), format, options.withSecrets(secrets()), durable);
        } catch (NoSuchFileException e) {
            throw new CliException(typed, "Could not create '" + typed + "': No such file or directory");
        } catch (AccessDeniedException e) {
            throw new CliException(typed, "Could not create '" + typed + "': Permission denied");
        } catch (ImageLimitException e) {
            if (format.equals("luks")) { // its own words for EFBIG, and the file deleted, as qemu-img's luks driver
                Files.deleteIfExists(path);
                throw new CliException(typed, "The requested file size is too large");
            }
            throw e;
        }
    }

    /** Refuses a missing file or a directory with qemu's wording. */
    static void checkOpenable(String typed, Path path) {
        if (Files.isDirectory(path)) {
            throw new CliException(typed, "Could not open '" + typed + "': Is a directory");
        }
        if (!Files.exists(path)) {
            throw new CliException(typed, "Could not open '" + typed + "': No such file or directory");
        }
    }
}
