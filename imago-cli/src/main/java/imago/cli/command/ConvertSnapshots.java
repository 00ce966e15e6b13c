package imago.cli.command;

import imago.api.Feature;
import imago.api.Image;
import imago.api.SnapshotInfo;
import imago.cli.text.QemuOpts;
import java.io.IOException;
import java.util.List;
import java.util.Map;

/**
 * {@code convert -l}: the first source is read at one of its internal snapshots, found as qemu-img finds it: by
 * {@code snapshot.id=} and/or {@code snapshot.name=} (both must match), or by a bare word, an id first, then a
 * name (not with several sources).
 */
final class ConvertSnapshots {
    private static final String ID = "snapshot.id";
    private static final String NAME = "snapshot.name";

    private ConvertSnapshots() {
    }

    /** Replaces the first of {@code sources} by the same image opened at the snapshot {@code -l} names. */
    static void load(Session session, String param, String format, boolean forceShare, List<Image> sources,
            List<String> names) throws IOException {
        String id = null;
        String name = null;
        boolean byIdOrName = !param.startsWith("snapshot.");
        if (byIdOrName) {
            if (sources.size() > 1) {
                throw new CliException(null, "No support for concatenating multiple snapshot");
            }
        } else {
            Map<String, String> opts;
            try {
                opts = QemuOpts.parse(List.of(param));
            } catch (IllegalArgumentException e) {
                opts = Map.of("", "");
            }
            for (String key : opts.keySet()) {
                if (!key.equals(ID) && !key.equals(NAME)) {
                    session.error("Invalid parameter '" + key + "'");
                    throw new CliException(null, "Failed in parsing snapshot param '" + param + "'");
                }
            }
            id = opts.get(ID);
            name = opts.get(NAME);
        }
        Image first = sources.getFirst();
        if (!first.supports(Feature.INTERNAL_SNAPSHOTS)) {
            throw new CliException(null, "Failed to load snapshot: Block format '" + first.format() + "' used by device "
                    + "'' does not support temporarily loading internal snapshots");
        }
        List<SnapshotInfo> snapshots = first.info().snapshots();
        SnapshotInfo found = byIdOrName ? find(snapshots, param, null) != null ? find(snapshots, param, null)
                : find(snapshots, null, param) : find(snapshots, id, name);
        if (found == null) {
            throw new CliException(null, "Failed to load snapshot: Can't find snapshot");
        }
        Image at = session.opener(names.getFirst(), format, false).lock(!forceShare).shareRawWrites(false)
                .snapshot(found.id()).open();
        first.close();
        sources.set(0, at);
    }

    /** The snapshot with this id and this name (either may be {@code null}: any), or {@code null}. */
    private static SnapshotInfo find(List<SnapshotInfo> snapshots, String id, String name) {
        for (SnapshotInfo s : snapshots) {
            if ((id == null || s.id().equals(id)) && (name == null || s.name().equals(name))) {
                return s;
            }
        }
        return null;
    }
}
