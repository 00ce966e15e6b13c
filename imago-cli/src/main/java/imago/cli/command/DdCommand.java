package imago.cli.command;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.nbd.NbdLocation;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/**
 * {@code imago dd}: copies a range of an image into a new image block by block, as {@code qemu-img dd}: the
 * output is created with the input's size less {@code skip} blocks ({@code count} blocks counted from the
 * start of the input, as qemu-img 7.2 counts them), or {@code osize} bytes, and every block is written, zeroes
 * included.
 */
@Command(name = "dd", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Copies blocks of an image into a new image, as qemu-img dd: "
                + "dd [-f FMT] [-O OUTPUT_FMT] [-U] [bs=BYTES] [count=N] [skip=N] [osize=BYTES] if=INPUT of=OUTPUT",
            "bs: bytes per block (default 512); count: copy only the first N blocks of the input; skip: start N "
                    + "blocks into it; osize (imago's own): the output's size in bytes (default: what is copied). "
                    + "Sizes take k, M, G, T, P and E suffixes."})
final class DdCommand implements Callable<Integer>, GetoptCommand {
    /** Bytes written at once: whole blocks of about this many, so that a small {@code bs} is not one call each. */
    private static final int BATCH = 1 << 20;

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Parameters(paramLabel = "ARG", description = "Options (-f FMT, -O FMT, -U) and operands (bs=, count=, skip=, "
            + "osize=, if=, of=), in any order.")
    private List<String> args = new ArrayList<>();

    DdCommand(Session session) {
        this.session = session;
    }

    /** The operands, as parsed. */
    private static final class Operands {
        long blockSize = 512;
        long count = -1;
        long skip = -1;
        long outputSize = -1;
        String input;
        String output;
    }

    @Override
    public Integer call() throws IOException {
        QemuGetopt parsed;
        try {
            parsed = QemuGetopt.parse(args, "hf:O:U", Map.of("help", false, "force-share", false));
        } catch (QemuGetopt.UsageError e) {
            return QemuGetopt.report(session, e);
        }
        String inputFormat = null;
        String outputFormat = "raw";
        boolean forceShare = false;
        for (QemuGetopt.Found o : parsed.options()) {
            switch (o.name()) {
                case "f" -> inputFormat = o.argument();
                case "O" -> outputFormat = o.argument();
                case "U", "force-share" -> forceShare = true;
                default -> { // -h, --help
                    picocli.CommandLine.usage(this, session.out());
                    return Cli.OK;
                }
            }
        }
        Operands dd = operands(parsed.operands());
        return copy(dd, inputFormat, outputFormat, forceShare);
    }

    private static Operands operands(List<String> operands) {
        Operands dd = new Operands();
        for (String operand : operands) {
            int eq = operand.indexOf('=');
            String name = eq < 0 ? operand : operand.substring(0, eq);
            String value = eq < 0 ? null : operand.substring(eq + 1);
            switch (eq < 0 ? "" : name) {
                case "bs" -> dd.blockSize = Arguments.cvtnum("bs", value, 1, Integer.MAX_VALUE);
                case "count" -> dd.count = Arguments.cvtnum("count", value, 0, Long.MAX_VALUE);
                case "skip" -> dd.skip = Arguments.cvtnum("skip", value, 0, Long.MAX_VALUE);
                case "osize" -> dd.outputSize = Arguments.cvtnum("osize", value, 0, Long.MAX_VALUE);
                case "if" -> dd.input = value;
                case "of" -> dd.output = value;
                default -> throw new CliException(null, "unrecognized operand " + name);
            }
        }
        if (dd.input == null || dd.output == null) {
            throw new CliException(null, "Must specify both input and output files");
        }
        return dd;
    }

    private int copy(Operands dd, String inputFormat, String outputFormat, boolean forceShare) throws IOException {
        if (!NbdLocation.isUri(dd.input) && !session.imageOpts()) {
            RegularFileCheck.checkRegularFile(dd.input);
        }
        try (Image in = openInput(dd.input, inputFormat, forceShare)) {
            if (!Imago.formats().contains(outputFormat)) {
                throw new CliException(null, "Unknown file format");
            }
            if (Imago.describe(outputFormat).readOnly()) {
                throw new CliException(null, "Format driver '" + outputFormat + "' does not support image creation");
            }
            long size = in.size();
            long bs = dd.blockSize;
            if (dd.count >= 0 && dd.count <= Long.MAX_VALUE / bs && dd.count * bs < size) {
                size = dd.count * bs; // counted from the input's start, skip or not (qemu-img 7.2)
            }
            boolean skipTooFar = dd.skip >= 0 && (dd.skip > Long.MAX_VALUE / bs || size < dd.skip * bs);
            long start = dd.skip < 0 || skipTooFar ? 0 : dd.skip * bs;
            long copied = skipTooFar ? 0 : size - start;
            long outputSize = dd.outputSize >= 0 ? dd.outputSize : copied;
            Path target = session.file(dd.output);
            try {
                session.create(dd.output, target, outputFormat, CreateOptions.ofSize(outputSize));
            } catch (CliException | IOException | IllegalArgumentException e) {
                String why = e instanceof CliException c ? c.getMessage() : Errors.describe(e, session, null);
                throw new CliException(null, dd.output + ": error while creating output image: " + why);
            }
            try (Image out = Imago.opener().path(target).format(outputFormat).writable(true)
                    .gate(session.openGate(target)).open()) {
                if (skipTooFar) {
                    // qemu-img warns, and leaves the output empty, as dd(1) does
                    session.error(dd.input + ": cannot skip to specified offset");
                }
                copyBlocks(in, out, start, Math.min(copied, out.size()), bs);
                out.flush();
            }
        }
        return Cli.OK;
    }

    private Image openInput(String typed, String format, boolean forceShare) throws IOException {
        try {
            return session.opener(typed, format, false).lock(!forceShare).open();
        } catch (IOException | IllegalArgumentException e) {
            throw OpenFailures.couldNotOpen(session, typed, format, e);
        }
    }

    /** Copies {@code length} bytes from {@code start} of {@code in} to the start of {@code out}, in whole blocks. */
    private static void copyBlocks(Image in, Image out, long start, long length, long blockSize) throws IOException {
        int batch = (int) Math.max(blockSize, BATCH / blockSize * blockSize);
        ByteBuffer buffer = ByteBuffer.allocateDirect((int) Math.min(batch, Math.max(length, 1)));
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(buffer.capacity(), length - done);
            buffer.clear().limit(n);
            in.read(buffer, start + done);
            buffer.flip();
            out.write(buffer, done);
            done += n;
        }
    }
}
