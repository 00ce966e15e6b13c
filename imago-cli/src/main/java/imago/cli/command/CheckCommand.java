package imago.cli.command;

import imago.api.CheckReport;
import imago.api.Feature;
import imago.api.Image;
import imago.api.Repair;
import imago.api.UnsupportedFeatureException;
import imago.cli.text.Json;
import java.io.IOException;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code imago check}: checks an image's metadata and optionally repairs it, with qemu-img check's
 * output and exit statuses: 0 clean, 1 check failed, 2 corruptions, 3 leaks only, 63 no checks for the format.
 */
@Command(name = "check", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Checks an image for consistency and optionally repairs it, as qemu-img check does.",
            "Exit status: 0 no errors, 1 check failed, 2 corruptions, 3 leaked clusters only, "
                    + "63 the format has no checks."})
final class CheckCommand implements Callable<Integer>, QemuOptionChecks {
    /** Exit status when the format has no checks. */
    static final int NOT_SUPPORTED = 63;

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

    @Mixin
    private OutputOption output;

    @Option(names = "-T", paramLabel = "SRC_CACHE", description = "The image's cache mode, checked as qemu-img checks "
            + "it; the page cache is used either way.")
    private String cache;

    @Option(names = "-r", paramLabel = "leaks|all",
            description = "Repair: leaks frees leaked clusters; all also fixes corruptions (may lose data).")
    private String repair;

    @Option(names = "-q", description = "Quiet: print nothing but errors.")
    private boolean quiet;

    @Mixin
    private ForceShareOption forceShare;

    @Mixin
    private ImageFile file;

    CheckCommand(Session session) {
        this.session = session;
    }

    /** qemu-img's check refuses a bad {@code -r} as it reads it. */
    @Override
    public void checkOption(String option, String value, List<String> before) {
        if (option.equals("-r")) {
            repairMode(value);
        }
    }

    private Repair repairMode(String repair) {
        return switch (repair == null ? "" : repair) {
            case "" -> Repair.NONE;
            case "leaks" -> Repair.LEAKS;
            case "all" -> Repair.ALL;
            default -> throw new CliException(null, "Unknown option value for -r (expecting 'leaks' or 'all'): " + repair
                    + "\nTry '" + session.program() + " --help' for more information");
        };
    }

    @Override
    public Integer call() throws IOException {
        boolean json = output.json();
        Repair mode = repairMode(repair);
        Arguments.checkCacheMode(cache, true);
        if (mode != Repair.NONE && forceShare.given()) {
            throw new CliException(null, "Could not open '" + file.name() + "': force-share=on can only be used with "
                    + "read-only images");
        }
        CheckReport report;
        boolean writable = mode != Repair.NONE;
        try (Image image = OpenFailures.open(session, session.opener(file.name(), format.name(), writable)
                .forCheck(true).writable(writable).lock(!forceShare.given()), file.name(), format.name())) {
            if (image.info().backingFilename().isPresent()) {
                // qemu-img check opens the image with its backing chain: a chain that cannot be opened fails it
                OpenFailures.requireBackingChain(session, session.opener(file.name(), format.name(), false)
                        .lock(false), file.name(), format.name());
            }
            if (!image.supports(Feature.CHECK)) {
                session.out().flush();
                session.error("This image format does not support checks");
                return NOT_SUPPORTED;
            }
            try {
                report = image.check(mode).withFilename(file.name());
            } catch (UnsupportedFeatureException e) {
                if (e.feature() != Feature.CHECK) {
                    throw e;
                }
                // a format that checks but cannot repair (vmdk): qemu-img says so as for one without checks
                session.out().flush();
                session.error("This image format does not support checks");
                return NOT_SUPPORTED;
            }
        }
        PrintStream err = session.err();
        for (String m : report.messages()) {
            if (QemuReasons.printedFirst(m).isPresent()) {
                session.error(m); // QEMU's open reports it (error_report: with the program's name), not its check
            } else {
                err.println(m);
            }
        }
        err.flush();
        if (report.failure().isPresent()) {
            session.error("Check failed: " + report.failure().get());
            return Cli.FAILED;
        }
        PrintStream out = session.out();
        if (!quiet) {
            if (report.corruptionsFixed() > 0 || report.leaksFixed() > 0) {
                if (!json) {
                    out.print("The following inconsistencies were found and repaired:\n\n"
                            + "    " + report.leaksFixed() + " leaked clusters\n"
                            + "    " + report.corruptionsFixed() + " corruptions\n\n"
                            + "Double checking the fixed image now...\n");
                }
            }
            out.print(json ? Json.pretty(jsonFields(report)) + "\n" : human(report));
        }
        out.flush();
        if (report.checkErrors() > 0) {
            session.error("Check failed");
        }
        return report.exitStatus();
    }

    /** qemu's ImageCheck in QAPI order; optional fields only when non-zero, as qemu-img sets them. */
    static Map<String, Object> jsonFields(CheckReport r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", r.filename());
        m.put("format", r.format());
        m.put("check-errors", r.checkErrors());
        optional(m, "image-end-offset", r.imageEndOffset());
        optional(m, "corruptions", r.corruptions());
        optional(m, "leaks", r.leaks());
        optional(m, "corruptions-fixed", r.corruptionsFixed());
        optional(m, "leaks-fixed", r.leaksFixed());
        optional(m, "total-clusters", r.totalClusters());
        optional(m, "allocated-clusters", r.allocatedClusters());
        optional(m, "fragmented-clusters", r.fragmentedClusters());
        optional(m, "compressed-clusters", r.compressedClusters());
        return m;
    }

    private static void optional(Map<String, Object> m, String key, long value) {
        if (value != 0) {
            m.put(key, value);
        }
    }

    /** qemu-img's dump_human_image_check. */
    static String human(CheckReport r) {
        StringBuilder sb = new StringBuilder();
        if (r.corruptions() == 0 && r.leaks() == 0 && r.checkErrors() == 0) {
            sb.append("No errors were found on the image.\n");
        } else {
            if (r.corruptions() != 0) {
                sb.append("\n").append(r.corruptions()).append(" errors were found on the image.\n"
                        + "Data may be corrupted, or further writes to the image may corrupt it.\n");
            }
            if (r.leaks() != 0) {
                sb.append("\n").append(r.leaks()).append(" leaked clusters were found on the image.\n"
                        + "This means waste of disk space, but no harm to data.\n");
            }
            if (r.checkErrors() != 0) {
                sb.append("\n").append(r.checkErrors()).append(" internal errors have occurred during the check.\n");
            }
        }
        if (r.totalClusters() != 0 && r.allocatedClusters() != 0) {
            sb.append(r.allocatedClusters()).append('/').append(r.totalClusters()).append(" = ")
                    .append(percent(r.allocatedClusters(), r.totalClusters())).append("% allocated, ")
                    .append(percent(r.fragmentedClusters(), r.allocatedClusters())).append("% fragmented, ")
                    .append(percent(r.compressedClusters(), r.allocatedClusters())).append("% compressed clusters\n");
        }
        if (r.imageEndOffset() != 0) {
            sb.append("Image end offset: ").append(r.imageEndOffset()).append('\n');
        }
        return sb.toString();
    }

    /** C's {@code %0.2f} of {@code part * 100.0 / whole}: the exact double rounded half to even. */
    static String percent(long part, long whole) {
        double v = part * 100.0 / whole;
        return new BigDecimal(v).setScale(2, RoundingMode.HALF_EVEN).toPlainString();
    }
}
