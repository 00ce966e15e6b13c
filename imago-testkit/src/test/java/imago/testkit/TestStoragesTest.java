package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** An image of several disks: the files created with it are its own, removed, checked and restored with it. */
class TestStoragesTest {

    @Test
    void filesCreatedWithAnImageGoWithIt() throws IOException {
        TestStorages.put("other", new byte[] {9});
        Set<String> before = TestStorages.names();
        TestStorages.put("img", new byte[] {1});
        TestStorages.put("img-s001", new byte[] {2});
        TestStorages.put("img-s002", new byte[] {3});
        TestStorages.put("unrelated", new byte[] {4});
        TestStorages.adopt("img", before);
        assertEquals(List.of("img", "img-s001", "img-s002"), TestStorages.files("img"));

        var saved = TestStorages.contents("img");
        AssertingStorage extent = TestStorages.open("img-s002", false, false);
        extent.write(ByteBuffer.wrap(new byte[] {7}), 0);
        assertThrows(AssertionError.class, () -> TestStorages.assertClean("img"), "an extent's handle left open");
        extent.close();
        TestStorages.assertClean("img");

        List<FaultStorage> restored = TestStorages.restore(saved);
        assertEquals(3, restored.size());
        assertArrayEquals(new byte[] {3}, TestStorages.disk("img-s002").content(), "restored as saved");
        restored.getFirst().crashAt(0, 1);
        restored.get(2).sync();
        assertEquals(1, restored.get(1).crashFiles().size(), "the restored files share one power supply");

        TestStorages.remove("img");
        assertNull(TestStorages.disk("img-s001"));
        assertEquals(List.of("img"), TestStorages.files("img"));
        assertArrayEquals(new byte[] {4}, TestStorages.disk("unrelated").content());
        TestStorages.remove("unrelated");
        TestStorages.remove("other");
    }
}
