package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CheckReport;
import imago.api.Repair;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Power loss at every write and sync of a repair that rebuilds the refcount structures
 * ({@code check -r all} on an image where a referenced cluster has refcount 0): whatever file is left
 * keeps the guest content, has no more corruptions than before the repair for {@code qemu-img check},
 * and repairs to a clean image.
 */
class Qcow2RepairCrashTest {
    private static final Pattern CORRUPTIONS = Pattern.compile("\"corruptions\": (\\d+)");

    @TempDir
    Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    private static long corruptions(Qemu.Output o) {
        Matcher m = CORRUPTIONS.matcher(o.out());
        return m.find() ? Long.parseLong(m.group(1)) : 0;
    }

    @ParameterizedTest
    @ValueSource(strings = {"data cluster", "refblock"})
    void powerLossDuringRebuildKeepsData(String damage) throws IOException {
        Path original = dir.resolve("damaged.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", original, "16M");
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 12k", "-c", "write -P 0x22 1M 8k", original);
        try (QcowBytes q = new QcowBytes(original)) {
            if (damage.equals("refblock")) {
                q.reftable(0, 0);
            } else {
                q.refcount(q.dataCluster(1), 0);
            }
        }
        byte[] damaged = Files.readAllBytes(original);
        long before = corruptions(Qemu.run(dir, "qemu-img", "check", "--output=json", original));
        assertTrue(before > 0);

        Qcow2FaultTest.CrashStorage probe = storage(damaged);
        CheckReport full = new Qcow2Check(probe).run(Repair.ALL);
        assertTrue(full.clean(), full::toString);
        int points = probe.points();
        assertTrue(probe.tableSwitchAt > 0, "the repair switched to a new refcount table");
        // writes and syncs: new refblock and table, sync, header, sync, then freeing the old structures
        assertTrue(points >= 6 && probe.tableSwitchAt < points - 1, () -> points + " crash points");
        Path crashed = dir.resolve("crashed.qcow2");
        for (int at = 0; at < points; at++) {
            Qcow2FaultTest.CrashStorage s = storage(damaged);
            s.crashAt(at, 1);
            new Qcow2Check(s).run(Repair.ALL);
            Files.write(crashed, s.crashed().orElseThrow());
            int point = at;
            Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", crashed, original);
            assertEquals(0, cmp.status(), () -> "power loss at " + point + ": " + cmp.out() + cmp.err());
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", "--output=json", crashed);
            assertTrue(check.status() != 1 && corruptions(check) <= before,
                    () -> "power loss at " + point + " of " + points + ":\n" + check.out() + check.err());
            CheckReport again = new Qcow2Check(storage(s.crashed().orElseThrow())).run(Repair.ALL);
            assertTrue(again.clean(), () -> "repair after power loss at " + point + ": " + again);
        }
    }

    private static Qcow2FaultTest.CrashStorage storage(byte[] content) {
        return new Qcow2FaultTest.CrashStorage(content);
    }
}
