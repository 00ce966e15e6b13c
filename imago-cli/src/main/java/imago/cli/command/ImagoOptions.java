package imago.cli.command;

import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;

/**
 * imago's own options, which qemu-img does not have: {@code --gate} and {@code --debug}, taken before the command
 * ({@link ImagoCommand}) and by every subcommand ({@link GlobalOptions}).
 */
final class ImagoOptions {
    private final Session session;

    /** @param session where the options take effect */
    ImagoOptions(Session session) {
        this.session = session;
    }

    /** Chooses the open gate; the last one given wins. */
    @Option(names = "--gate", paramLabel = "permissive|confined|deny", converter = GateConverter.class,
            description = "Which files an image may name and have opened: permissive (default, like qemu-img), "
                    + "confined (only in the top image's directory, no format probing) or deny (none).")
    void gate(Session.Gate gate) {
        if (gate != null) {
            session.gate(gate);
        }
    }

    /** Turns on stack traces and debug logging. */
    @Option(names = "--debug", description = "Print stack traces with errors, and debug log messages.")
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
