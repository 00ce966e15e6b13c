package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Secrets;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.probe.Opener;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LUKS2's {@code info} fields, and the create options imago adds ({@code luks-version}, {@code pbkdf},
 * {@code sector-size}...) with their refusals. Reads and writes of LUKS2 data are in {@link LuksModelTest}.
 */
class Luks2ModelTest {
    private static Opener opener(String name) {
        return Imago.opener().location(StorageLocation.memory(name)).format("luks")
                .secret("s", "pw".getBytes(StandardCharsets.UTF_8)).option("key-secret", "s");
    }

    private static CreateOptions.Builder options(long size, String... kv) {
        CreateOptions.Builder b = CreateOptions.builder().size(size).secrets(Secrets.create().put("s",
                "pw".getBytes(StandardCharsets.UTF_8))).option("key-secret", "s").option("iter-time", "1")
                .option("luks-version", "2");
        for (int i = 0; i < kv.length; i += 2) {
            b.option(kv[i], kv[i + 1]);
        }
        return b;
    }

    private static void create(String name, CreateOptions options) throws IOException {
        MemoryStorage.of(name, new byte[0]).close();
        Imago.create(StorageLocation.memory(name), "luks", options);
    }

    @Test
    void infoShowsTheLuks2FieldsAndNoSecrets() throws IOException {
        String name = "luks2-info";
        try {
            create(name, options(1 << 20, "pbkdf", "argon2id", "pbkdf-memory", "256", "pbkdf-parallel", "1",
                    "sector-size", "4096").build());
            // the header only, without a secret, as for LUKS1
            try (Image image = Imago.opener().location(StorageLocation.memory(name)).format("luks").metadataOnly(true).open()) {
                Map<String, Object> info = image.info().formatSpecific();
                assertEquals(2, info.get("luks-version"));
                assertEquals("aes-256", info.get("cipher-alg"));
                assertEquals("xts", info.get("cipher-mode"));
                assertEquals("plain64", info.get("ivgen-alg"));
                assertEquals(16L << 20, info.get("payload-offset"));
                assertEquals(4096, info.get("sector-size"));
                assertEquals(16384L, info.get("header-size"));
                assertEquals((16L << 20) - 32768, info.get("keyslots-size"));
                Map<?, ?> slot = (Map<?, ?>) ((List<?>) info.get("slots")).getFirst();
                assertEquals("argon2id", slot.get("kdf"));
                assertEquals(256L, slot.get("memory"));
                assertEquals(1L, slot.get("cpus"));
                assertTrue((Long) slot.get("time") >= 4, slot::toString);
                assertEquals(32768L, slot.get("key-offset"));
                assertTrue(!info.toString().contains("salt") && !info.toString().contains("digest"), info::toString);
                assertThrows(imago.api.ImageException.class, () -> image.read(ByteBuffer.allocate(1), 0));
            }
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @Test
    void createOptionsAreCheckedAndMeasured() throws IOException {
        String name = "luks2-options";
        try {
            String[][] refused = {
                {"luks-version", "3", "for luks-version (1 or 2)"},
                {"pbkdf", "scrypt", "for pbkdf (argon2id, argon2i or pbkdf2)"},
                {"sector-size", "1024", "for sector-size (512 or 4096)"},
                {"sector-size", "8192", "expects a number from 1 to 4096"},
                {"pbkdf-parallel", "8", "expects a number from 1 to 4"},
                {"pbkdf-memory", "16", "at least 8 KiB per lane"},
                {"label", "x", "Invalid parameter 'label'"},
            };
            for (String[] r : refused) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> create(name, options(1 << 20, r[0], r[1]).build()));
                assertTrue(e.getMessage().contains(r[2]), e.getMessage());
            }
            // a size in part sectors is rounded up to whole ones, as QEMU rounds LUKS1's to 512 bytes
            create(name, options(1000, "pbkdf", "pbkdf2", "sector-size", "4096").build());
            try (Image image = opener(name).open()) {
                assertEquals(4096, image.size());
            }
            IllegalArgumentException e;
            // LUKS1's creator ignores luks-version=1, and refuses imago's LUKS2 options
            create(name, options(1 << 16).option("luks-version", "1").build());
            try (Image image = opener(name).open()) {
                assertEquals(null, image.info().formatSpecific().get("luks-version"));
            }
            e = assertThrows(IllegalArgumentException.class, () -> create(name, options(1 << 16)
                    .option("luks-version", "1").option("pbkdf", "pbkdf2").build()));
            assertTrue(e.getMessage().contains("Invalid parameter 'pbkdf'"), e.getMessage());
            var measured = Imago.measure("luks", options(1 << 20).build(), null);
            assertEquals((16L << 20) + (1 << 20), measured.fullyAllocated());
            measured = Imago.measure("luks", options(1000).option("sector-size", "4096").build(), null);
            assertEquals((16L << 20) + 4096, measured.fullyAllocated());
        } finally {
            MemoryStorage.delete(name);
        }
    }

    /**
     * qemu-img refuses luks options before it makes the file: through {@code Imago.create} (checkCreate) a refusal, of
     * LUKS1 or LUKS2, makes no file and leaves an existing one as it was.
     */
    @Test
    void refusalsLeaveTheFileAsItWas(@TempDir Path dir) throws IOException {
        Path kept = Files.writeString(dir.resolve("kept.luks"), "the user's");
        Path none = dir.resolve("none.luks");
        CreateOptions[] refused = {options(1 << 20, "cipher-alg", "foo").build(),
            options(1 << 20).option("luks-version", "1").option("hash-alg", "foo").build(),
            options(1 << 20, "key-secret", "nosuch").build(),
            CreateOptions.builder().size(1 << 20).build(),
            options(1 << 20, "sector-size", "1024").build()};
        for (CreateOptions o : refused) {
            assertThrows(IllegalArgumentException.class, () -> Imago.create(kept, "luks", o), o::toString);
            assertEquals("the user's", Files.readString(kept), o::toString);
            assertThrows(IllegalArgumentException.class, () -> Imago.create(none, "luks", o), o::toString);
            assertFalse(Files.exists(none), o::toString);
        }
    }
}
