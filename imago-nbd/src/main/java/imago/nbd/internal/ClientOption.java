package imago.nbd.internal;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One option a client sends during the handshake, parsed from its data. Parsing is pure: it looks only at the
 * bytes given, and bad data is an {@link OptionException} carrying the error reply the specification asks for,
 * never another exception.
 */
public sealed interface ClientOption {

    /** {@code NBD_OPT_EXPORT_NAME}: the old way into transmission, by name. */
    record ExportName(String name) implements ClientOption {
    }

    /** {@code NBD_OPT_ABORT}. */
    record Abort() implements ClientOption {
    }

    /** {@code NBD_OPT_LIST}. */
    record ListExports() implements ClientOption {
    }

    /** {@code NBD_OPT_STARTTLS}. */
    record StartTls() implements ClientOption {
    }

    /**
     * {@code NBD_OPT_INFO} or {@code NBD_OPT_GO}.
     *
     * @param go whether the client goes into transmission after the reply
     * @param name the export
     * @param requests the {@code NBD_INFO_*} types asked for
     */
    record Info(boolean go, String name, List<Integer> requests) implements ClientOption {
    }

    /** {@code NBD_OPT_STRUCTURED_REPLY}. */
    record StructuredReply() implements ClientOption {
    }

    /**
     * {@code NBD_OPT_LIST_META_CONTEXT} or {@code NBD_OPT_SET_META_CONTEXT}.
     *
     * @param set whether the contexts are selected (SET) or only listed (LIST)
     * @param export the export they are for
     * @param queries the context names or prefixes asked for
     */
    record MetaContexts(boolean set, String export, List<String> queries) implements ClientOption {
    }

    /** An option this server does not know. */
    record Unknown(int option) implements ClientOption {
    }

    /**
     * Parses option {@code option} from {@code data} (exactly the option's payload).
     *
     * @throws OptionException for data the option cannot have (too short, trailing bytes, a bad string)
     */
    static ClientOption parse(int option, ByteBuffer data) throws OptionException {
        try {
            return switch (option) {
                case Nbd.OPT_EXPORT_NAME -> new ExportName(string(data, data.remaining()));
                case Nbd.OPT_ABORT -> new Abort();
                case Nbd.OPT_LIST -> empty(data, new ListExports());
                case Nbd.OPT_STARTTLS -> empty(data, new StartTls());
                case Nbd.OPT_STRUCTURED_REPLY -> empty(data, new StructuredReply());
                case Nbd.OPT_INFO, Nbd.OPT_GO -> info(option == Nbd.OPT_GO, data);
                case Nbd.OPT_LIST_META_CONTEXT, Nbd.OPT_SET_META_CONTEXT ->
                        metaContexts(option == Nbd.OPT_SET_META_CONTEXT, data);
                default -> new Unknown(option);
            };
        } catch (BufferUnderflowException e) {
            throw new OptionException(Nbd.REP_ERR_INVALID, "option " + option + ": data ends too early");
        }
    }

    private static ClientOption empty(ByteBuffer data, ClientOption option) throws OptionException {
        if (data.hasRemaining()) {
            throw new OptionException(Nbd.REP_ERR_INVALID, "this option takes no data");
        }
        return option;
    }

    private static Info info(boolean go, ByteBuffer data) throws OptionException {
        String name = string(data, length(data));
        int count = Short.toUnsignedInt(data.getShort());
        if (data.remaining() != 2 * count) {
            throw new OptionException(Nbd.REP_ERR_INVALID, "the information requests do not fill the option: "
                    + count + " announced, " + data.remaining() + " bytes left");
        }
        List<Integer> requests = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            requests.add(Short.toUnsignedInt(data.getShort()));
        }
        return new Info(go, name, List.copyOf(requests));
    }

    private static MetaContexts metaContexts(boolean set, ByteBuffer data) throws OptionException {
        String export = string(data, length(data));
        long count = Integer.toUnsignedLong(data.getInt());
        // each query takes at least its 4-byte length: a count the data cannot hold is a lie, not a big list
        if (count > data.remaining() / 4) {
            throw new OptionException(Nbd.REP_ERR_INVALID, count + " queries cannot fit in " + data.remaining()
                    + " bytes");
        }
        List<String> queries = new ArrayList<>((int) count);
        for (long i = 0; i < count; i++) {
            queries.add(string(data, length(data)));
        }
        if (data.hasRemaining()) {
            throw new OptionException(Nbd.REP_ERR_INVALID, data.remaining() + " bytes after the last query");
        }
        return new MetaContexts(set, export, List.copyOf(queries));
    }

    /** A 32-bit string length, checked against the data left and the specification's bound. */
    private static int length(ByteBuffer data) throws OptionException {
        long length = Integer.toUnsignedLong(data.getInt());
        if (length > data.remaining()) {
            throw new OptionException(Nbd.REP_ERR_INVALID, "a string of " + length + " bytes in " + data.remaining()
                    + " bytes of data");
        }
        return (int) length;
    }

    /** {@code length} bytes of UTF-8 without NUL, at most {@link Nbd#MAX_STRING} long. */
    private static String string(ByteBuffer data, int length) throws OptionException {
        if (length > Nbd.MAX_STRING) {
            throw new OptionException(Nbd.REP_ERR_TOO_BIG, "a string of " + length + " bytes (at most "
                    + Nbd.MAX_STRING + ")");
        }
        ByteBuffer bytes = data.slice(data.position(), length);
        data.position(data.position() + length);
        try {
            CharBuffer chars = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(bytes);
            String s = chars.toString();
            if (s.indexOf('\0') >= 0) {
                throw new OptionException(Nbd.REP_ERR_INVALID, "a string with a NUL character");
            }
            return s;
        } catch (CharacterCodingException e) {
            throw new OptionException(Nbd.REP_ERR_INVALID, "a string that is not UTF-8");
        }
    }
}
