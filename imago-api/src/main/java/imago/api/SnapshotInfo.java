package imago.api;

import java.util.Objects;

/**
 * An internal snapshot, with the fields {@code qemu-img info --output=json} and
 * {@code qemu-img snapshot -l} show.
 *
 * @param id the snapshot's id string
 * @param name the snapshot's name
 * @param vmStateSize bytes of saved VM state
 * @param dateSec creation time, seconds since the epoch
 * @param dateNsec creation time, nanoseconds part
 * @param vmClockNsec guest clock at creation, in nanoseconds
 * @param icount the guest instruction counter at creation, or -1 when not recorded
 */
public record SnapshotInfo(String id, String name, long vmStateSize, long dateSec, long dateNsec, long vmClockNsec,
        long icount) {

    /** Validates the fields. */
    public SnapshotInfo {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(name, "name");
    }
}
