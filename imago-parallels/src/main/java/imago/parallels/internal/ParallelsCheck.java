package imago.parallels.internal;

import imago.api.CheckReport;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.api.spi.BlockTable;
import imago.api.spi.Checker;
import imago.api.spi.Storage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code qemu-img check} for parallels as QEMU 7.2 does it: the in-use mark (a corruption; repaired by the clean
 * close that follows), clusters that start past the end of the file (corruptions; {@code -r all} drops their
 * entries), and space past the last cluster (leaks, counted from the last cluster's end in clusters; {@code -r}
 * cuts the file; the clean close then sets it to the end of the data area, as QEMU's does). Where QEMU would cut the file into its own catalog (images whose catalog is longer than a
 * cluster), imago cuts it at the catalog's end instead.
 */
final class ParallelsCheck implements Checker {
    private final Storage storage;
    private final ParallelsHeader header;
    private final BlockTable table;
    private final boolean writable;
    private boolean unclean;

    /** A checker of the image over {@code storage} with {@code header} and its catalog {@code table}. */
    ParallelsCheck(Storage storage, ParallelsHeader header, BlockTable table, boolean writable) {
        this.storage = storage;
        this.header = header;
        this.table = table;
        this.writable = writable;
        this.unclean = header.inUse();
    }

    @Override
    public CheckReport check(Repair repair) throws IOException {
        if (repair != Repair.NONE && !writable) {
            throw new ReadOnlyImageException(storage.name(), "cannot repair a read-only image");
        }
        Pass first = pass(repair);
        if (first.corruptionsFixed == 0 && first.leaksFixed == 0) {
            return first.report(0, 0);
        }
        Pass second = pass(Repair.NONE);
        // qemu-img prints what both passes found, the repairing one first
        second.messages.addAll(0, first.messages);
        return second.report(first.corruptionsFixed, first.leaksFixed);
    }

    /** The counts of one pass. */
    private final class Pass {
        final List<String> messages = new ArrayList<>();
        long corruptions;
        long leaks;
        long corruptionsFixed;
        long leaksFixed;
        long allocated;
        long fragmented;
        long imageEnd;

        CheckReport report(long corruptionsFixedBefore, long leaksFixedBefore) {
            return new CheckReport(storage.name(), "parallels", 0, corruptions, leaks,
                    corruptionsFixedBefore, leaksFixedBefore, imageEnd, table.length(), allocated,
                    fragmented, 0, messages, Optional.empty());
        }

        void note(String line) {
            if (messages.size() < CheckReport.MAX_MESSAGES) {
                messages.add(line);
            }
        }
    }

    private Pass pass(Repair repair) throws IOException {
        boolean fixErrors = repair == Repair.ALL;
        boolean fixLeaks = repair != Repair.NONE;
        long cluster = header.clusterSize();
        long size = (storage.size() + 511) / 512 * 512; // QEMU sees the file in whole sectors
        Pass p = new Pass();
        if (unclean) {
            p.note((fixErrors ? "Repairing" : "ERROR") + " image was not closed correctly");
            p.corruptions++;
            if (fixErrors) {
                p.corruptionsFixed++;
                unclean = false; // the clean close clears the mark
            }
        }
        long high = 0;
        long prev = 0;
        boolean changed = false;
        for (int i = 0; i < table.length(); i++) {
            long off = table.hostOffset(i);
            if (off < 0) {
                prev = 0;
                continue;
            }
            if (off > size) {
                p.note((fixErrors ? "Repairing" : "ERROR") + " cluster " + i + " is outside image");
                p.corruptions++;
                if (fixErrors) {
                    prev = 0;
                    table.set(i, 0);
                    p.corruptionsFixed++;
                    changed = true;
                    continue;
                }
            }
            p.allocated++;
            high = Math.max(high, off);
            if (prev != 0 && prev + cluster != off) {
                p.fragmented++;
            }
            prev = off;
        }
        if (changed) {
            table.flush();
            storage.sync();
        }
        p.imageEnd = high + cluster;
        if (size > p.imageEnd) {
            long count = (size - p.imageEnd + cluster - 1) / cluster;
            p.note((fixLeaks ? "Repairing" : "ERROR") + " space leaked at the end of the image " + (size - p.imageEnd));
            p.leaks += count;
            if (fixLeaks) {
                long keep = Math.max(p.imageEnd, (header.tableEnd() + 511) / 512 * 512);
                storage.resize(keep, Preallocation.OFF);
                storage.sync();
                p.leaksFixed += count;
            }
        }
        return p;
    }
}
