package imago.cli.convert;

/** Thrown to a chunk of a {@link Converter} that waits for its turn when another one failed. */
final class Aborted extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Aborted() {
        super(null, null, false, false);
    }
}
