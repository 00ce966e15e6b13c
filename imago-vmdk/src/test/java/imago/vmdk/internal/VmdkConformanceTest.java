package imago.vmdk.internal;

import imago.api.CreateOptions;
import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.spi.Dependency;
import imago.api.spi.Storage;
import imago.probe.Imago;
import imago.testkit.FaultStorage;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;
import imago.testkit.TestStorages;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * vmdk against the conformance kit, on every subformat imago creates and one it only reads: monolithicSparse (with
 * and without zeroed-grain entries, and as a delta disk over a vmdk parent), monolithicFlat (a descriptor and its
 * flat extent file), twoGbMaxExtentSparse and twoGbMaxExtentFlat (split at {@value #SPLIT} bytes instead of 2 GiB, so
 * that the kit's small images span three extent files and its writes cross their boundaries), vmfs (a monolithicFlat
 * image whose descriptor says {@code vmfs} and {@code VMFS}, as ESX writes it) and streamOptimized, write-once: the
 * kit's model knows that a grain written again, or a part of one, is refused, as QEMU refuses it. The extent
 * files live next to the descriptor on the kit's disks, are opened through the gate, and lose power with it. vmdk
 * neither resizes nor repairs, rounds sizes up to whole sectors, as QEMU does, and refuses to create an image of 0
 * bytes, which no one could open.
 */
class VmdkConformanceTest extends FormatConformanceTest {
    /** The extent size of the split layouts: two grains. */
    static final long SPLIT = 128 * 1024;

    VmdkConformanceTest() {
        super("vmdk", FormatTraits.of(Preallocation.OFF).roundingSizesUpTo(512).refusingEmptyImages(),
                Layout.of("monolithicSparse", 65536, ""),
                Layout.of("monolithicSparse, zeroed grains", 65536, "zeroed_grain=on"),
                Layout.of("delta disk", 65536, "").overBackingFile("vmdk"),
                Layout.of("monolithicFlat", 4096, "subformat=monolithicFlat"),
                Layout.of("twoGbMaxExtentSparse", 65536, "subformat=twoGbMaxExtentSparse").createdBy(split(SPLIT)),
                Layout.of("twoGbMaxExtentFlat", 65536, "subformat=twoGbMaxExtentFlat").createdBy(split(SPLIT)),
                Layout.of("vmfs", 4096, "subformat=monolithicFlat").createdBy(VmdkConformanceTest::vmfs),
                Layout.of("streamOptimized", 65536, "subformat=streamOptimized").writingOnce());
    }

    /**
     * Creates split images as {@code Imago.create} does, but with extent files of {@code splitSize} bytes: the
     * descriptor on the kit's disk, each extent file on a disk named as the descriptor names it.
     */
    static Layout.Creator split(long splitSize) {
        return (name, options) -> {
            VmdkFormatDriver driver = new VmdkFormatDriver(() -> ThreadLocalRandom.current().nextLong(), splitSize);
            StorageLocation at = TestStorages.location(name);
            List<FaultStorage> extents = new ArrayList<>();
            for (Dependency file : driver.createdFiles(at, options)) {
                FaultStorage extent = new FaultStorage(TestStorages.location(file.storedName()));
                TestStorages.put(file.storedName(), extent);
                extents.add(extent);
            }
            FaultStorage descriptor = new FaultStorage(at);
            TestStorages.put(name, descriptor);
            driver.create(descriptor, options, List.<Storage>copyOf(extents));
            for (FaultStorage extent : extents) {
                extent.sync();
            }
            descriptor.sync();
        };
    }

    /**
     * A vmfs image, which qemu-img and imago do not create but read: a monolithicFlat one whose descriptor then says
     * {@code createType="vmfs"} and names its extent {@code VMFS}, which takes no offset.
     */
    static void vmfs(String name, CreateOptions options) throws IOException {
        StorageLocation at = TestStorages.location(name);
        Imago.create(at, "vmdk", options);
        String flat = new String(TestStorages.disk(name).content(), StandardCharsets.UTF_8);
        String vmfs = flat.replace("createType=\"monolithicFlat\"", "createType=\"vmfs\"")
                .replaceAll("(?m)^RW (\\d+) FLAT (\".*\") 0$", "RW $1 VMFS $2");
        if (vmfs.equals(flat) || vmfs.contains("FLAT")) {
            throw new AssertionError("not the monolithicFlat descriptor the test expects:\n" + flat);
        }
        TestStorages.put(name, vmfs.getBytes(StandardCharsets.UTF_8));
    }
}
