package imago.cli.command;

import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;

/** The options every (sub)command takes: {@code --gate}, {@code --debug}, {@code --object} and {@code --image-opts}. */
public final class GlobalOptions {
    /** {@code --gate}'s description, also that of the command's own ({@link ImagoCommand}). */
    static final String GATE = "Which files an image may name and have opened: permissive (default, like qemu-img), "
            + "confined (only in the top image's directory, no format probing) or deny (none).";
    /** {@code --debug}'s description, also that of the command's own. */
    static final String DEBUG = "Print stack traces with errors, and debug log messages.";

    private final Session session;

    /** @param session where the options take effect */
    public GlobalOptions(Session session) {
        this.session = session;
    }

    /** Chooses the open gate; the last one given wins. */
    @Option(names = "--gate", paramLabel = "permissive|confined|deny", converter = GateConverter.class,
            description = GATE)
    void gate(Session.Gate gate) {
        if (gate != null) {
            session.gate(gate);
        }
    }

    /** Keeps an object (qemu's {@code --object}): a secret for options that name it, TLS credentials for nbd. */
    @Option(names = "--object", paramLabel = "OBJ",
            description = "secret,id=ID,data=TEXT|file=PATH[,format=raw|base64]: a passphrase that options name by "
                    + "id (-o key-secret=ID, --image-opts driver=luks,key-secret=ID,file.filename=FILE); "
                    + "tls-creds-x509,id=ID,dir=DIR,endpoint=server[,verify-peer=on|off]: TLS credentials for nbd "
                    + "(ca-cert.pem, server-cert.pem, server-key.pem in DIR). Repeatable.")
    void object(String argument) {
        session.object(argument);
    }

    /** Reads the file arguments as option lists ({@code driver=luks,key-secret=ID,file.filename=FILE}). */
    @Option(names = "--image-opts", description = "Treat each file argument as an option list: "
            + "driver=FORMAT,file.filename=FILE and driver options such as key-secret=ID.")
    void imageOpts(boolean on) {
        if (on) {
            session.imageOpts(true);
        }
    }

    /** Turns on stack traces and debug logging. */
    @Option(names = "--debug", description = DEBUG)
    void debug(boolean on) {
        if (on) {
            session.debug(true);
        }
    }

    /** Parses {@code --gate} values. */
    static final class GateConverter implements ITypeConverter<Session.Gate> {
        GateConverter() {
        }

        @Override
        public Session.Gate convert(String value) {
            try {
                return Session.Gate.parse(value);
            } catch (CliException e) {
                throw new picocli.CommandLine.TypeConversionException("expected permissive, confined or deny, got '"
                        + value + "'");
            }
        }
    }
}
