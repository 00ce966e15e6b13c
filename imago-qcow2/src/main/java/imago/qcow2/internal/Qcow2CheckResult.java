package imago.qcow2.internal;

import imago.api.CheckReport;
import java.util.ArrayList;
import java.util.List;

/** The counts of one pass of {@link Qcow2Check}, as QEMU's BdrvCheckResult, and the messages said. */
final class Qcow2CheckResult {

    long checkErrors;
    long corruptions;
    long leaks;
    long corruptionsFixed;
    long leaksFixed;
    long imageEndOffset;
    long totalClusters;
    long allocatedClusters;
    long fragmentedClusters;
    long compressedClusters;
    final List<String> messages;
    /** Why the check stopped (qemu's strerror text), or null. */
    String failure;
    private long dropped;

    Qcow2CheckResult(List<String> messages) {
        this.messages = messages;
    }

    void message(String m) {
        if (messages.size() < CheckReport.MAX_MESSAGES - 1) {
            messages.add(m);
        } else {
            dropped++;
        }
    }

    List<String> finishedMessages() {
        List<String> out = new ArrayList<>(messages);
        if (dropped > 0) {
            out.add("(" + dropped + " more messages left out)");
        }
        return out;
    }

    Qcow2CheckResult copy() {
        Qcow2CheckResult r = new Qcow2CheckResult(messages);
        r.copyFrom(this);
        return r;
    }

    void copyFrom(Qcow2CheckResult o) {
        checkErrors = o.checkErrors;
        corruptions = o.corruptions;
        leaks = o.leaks;
        corruptionsFixed = o.corruptionsFixed;
        leaksFixed = o.leaksFixed;
        imageEndOffset = o.imageEndOffset;
        totalClusters = o.totalClusters;
        allocatedClusters = o.allocatedClusters;
        fragmentedClusters = o.fragmentedClusters;
        compressedClusters = o.compressedClusters;
    }
}
