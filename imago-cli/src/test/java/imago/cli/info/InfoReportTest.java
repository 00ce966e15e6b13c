package imago.cli.info;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.ImageInfo;
import imago.api.SnapshotInfo;
import java.time.ZoneOffset;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/** Reports checked against what qemu-img 7.2 prints for a qcow2 overlay on a raw image. */
class InfoReportTest {

    private static ImageInfo overlay(Map<String, Object> formatSpecific) {
        return new ImageInfo("/abs/y.qcow2", "qcow2", 67108864, OptionalLong.of(200704), OptionalInt.of(65536), false,
                Optional.of("x.img"), Optional.of("/abs/x.img"), Optional.of("raw"), formatSpecific, List.of());
    }

    private static Map<String, Object> qcow2Data() {
        Map<String, Object> data = new LinkedHashMap<>(); // QAPI's field order
        data.put("compat", "1.1");
        data.put("extended-l2", false);
        data.put("lazy-refcounts", false);
        data.put("corrupt", false);
        data.put("refcount-bits", 16);
        data.put("compression-type", "zlib");
        return data;
    }

    private static final String QEMU_JSON = """
            {
                "backing-filename-format": "raw",
                "virtual-size": 67108864,
                "filename": "y.qcow2",
                "cluster-size": 65536,
                "format": "qcow2",
                "actual-size": 200704,
                "format-specific": {
                    "type": "qcow2",
                    "data": {
                        "compat": "1.1",
                        "compression-type": "zlib",
                        "lazy-refcounts": false,
                        "refcount-bits": 16,
                        "corrupt": false,
                        "extended-l2": false
                    }
                },
                "full-backing-filename": "x.img",
                "backing-filename": "x.img",
                "dirty-flag": false
            }""";

    private static final String QEMU_HUMAN = """
            image: y.qcow2
            file format: qcow2
            virtual size: 64 MiB (67108864 bytes)
            disk size: 196 KiB
            cluster_size: 65536
            backing file: x.img
            backing file format: raw
            Format specific information:
                compat: 1.1
                compression type: zlib
                lazy refcounts: false
                refcount bits: 16
                corrupt: false
                extended l2: false
            """;

    @Test
    void qcow2OverlayJsonAndHumanMatchQemuImg() {
        InfoReport.Layer layer = new InfoReport.Layer("y.qcow2", overlay(qcow2Data()));
        assertEquals(QEMU_JSON, InfoReport.json(List.of(layer), false));
        assertEquals(QEMU_HUMAN, InfoReport.human(List.of(layer)));
        // a driver may also give the union itself
        Map<String, Object> union = new LinkedHashMap<>();
        union.put("type", "qcow2");
        union.put("data", qcow2Data());
        assertEquals(QEMU_JSON, InfoReport.json(List.of(new InfoReport.Layer("y.qcow2", overlay(union))), false));
    }

    @Test
    void backingPathsAreCombinedLikeQemu() {
        assertEquals("x.img", InfoReport.combine("y.qcow2", "x.img"));
        assertEquals("/d/x.img", InfoReport.combine("/d/y.qcow2", "x.img"));
        assertEquals("a/b/../x.img", InfoReport.combine("a/b/y", "../x.img"));
        assertEquals("/abs.img", InfoReport.combine("a/y", "/abs.img"));
        InfoReport.Layer deep = new InfoReport.Layer("dir/y.qcow2", overlay(Map.of()));
        String human = InfoReport.human(List.of(deep));
        assertEquals(true, human.contains("backing file: x.img (actual path: dir/x.img)\n"), human);
    }

    @Test
    void unknownSizeDirtyAndNestedValuesAreShownLikeQemu() {
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("bitmaps", List.of(Map.of("name", "b0"), "flat"));
        ImageInfo info = new ImageInfo("z", "cow", 512, OptionalLong.empty(), OptionalInt.empty(), true,
                Optional.empty(), Optional.empty(), Optional.empty(), data, List.of());
        assertEquals("""
                image: z
                file format: cow
                virtual size: 512 B (512 bytes)
                disk size: unavailable
                cleanly shut down: no
                Format specific information:
                    bitmaps:
                        [0]:
                            name: b0
                        [1]: flat
                """, InfoReport.human(List.of(new InfoReport.Layer("z", info))));
    }

    private static final List<SnapshotInfo> SNAPSHOTS = List.of(
            new SnapshotInfo("1", "first", 0, 1795291986, 13471000, 0, 0),
            new SnapshotInfo("2", "second snapshot with a long name", 1536, 1795291986, 24437000, 3_723_456_000_000L,
                    -1),
            new SnapshotInfo("10", "vm", 3L << 30, 0, 0, 360_000_000_000_000L, 123456789));

    @Test
    void snapshotTableHasQemusColumns() {
        assertEquals("Snapshot list:\n"
                + "ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n"
                + "1         first                 0 B 2026-11-21 20:13:06 00:00:00.000          0\n"
                + "2         second snapshot with a long name  1.5 KiB 2026-11-21 20:13:06 01:02:03.456           \n"
                + "10        vm                  3 GiB 1970-01-01 00:00:00100:00:00.000  123456789\n",
                InfoReport.snapshotTable(SNAPSHOTS, ZoneOffset.UTC));
        assertEquals("", InfoReport.snapshotTable(List.of(), ZoneOffset.UTC));
    }

    @Test
    void snapshotsInJsonHaveQemusKeysAndOrder() {
        ImageInfo info = new ImageInfo("/abs/s.qcow2", "qcow2", 1 << 20, OptionalLong.empty(), OptionalInt.of(65536),
                false, Optional.empty(), Optional.empty(), Optional.empty(), Map.of(), SNAPSHOTS.subList(0, 2));
        assertEquals("""
                {
                    "snapshots": [
                        {
                            "icount": 0,
                            "vm-clock-nsec": 0,
                            "name": "first",
                            "date-sec": 1795291986,
                            "date-nsec": 13471000,
                            "vm-clock-sec": 0,
                            "id": "1",
                            "vm-state-size": 0
                        },
                        {
                            "vm-clock-nsec": 456000000,
                            "name": "second snapshot with a long name",
                            "date-sec": 1795291986,
                            "date-nsec": 24437000,
                            "vm-clock-sec": 3723,
                            "id": "2",
                            "vm-state-size": 1536
                        }
                    ],
                    "virtual-size": 1048576,
                    "filename": "s.qcow2",
                    "cluster-size": 65536,
                    "format": "qcow2",
                    "dirty-flag": false
                }""", InfoReport.json(List.of(new InfoReport.Layer("s.qcow2", info)), false));
    }

    /** File names inside format-specific data are shown as QEMU shows child files: in the user's terms. */
    @Test
    void formatSpecificFileNamesAreShownRelativeToTheImage() {
        assertEquals("d.vmdk", InfoReport.displayFileName("/x/y/d.vmdk", "/x/y/d.vmdk", "d.vmdk"));
        assertEquals("y/d-f001.vmdk", InfoReport.displayFileName("/x/y/d-f001.vmdk", "/x/y/d.vmdk", "y/d.vmdk"));
        assertEquals("/x/y/sub/e.raw", InfoReport.displayFileName("/x/y/sub/e.raw", "/x/y/d.vmdk",
                "/x/y/d.vmdk"));
        assertEquals("/elsewhere/e.raw", InfoReport.displayFileName("/elsewhere/e.raw", "/x/y/d.vmdk", "d.vmdk"));
    }
}
