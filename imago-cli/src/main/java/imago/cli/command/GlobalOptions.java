package imago.cli.command;

import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The options every (sub)command takes: {@code --gate}, {@code --debug}, {@code --object} and {@code --image-opts}. */
public final class GlobalOptions {
    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private ImagoOptions own;

    /** @param session where the options take effect */
    public GlobalOptions(Session session) {
        this.session = session;
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
}
