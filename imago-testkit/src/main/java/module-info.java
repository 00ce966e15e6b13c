/**
 * Test support shared by imago's module tests (test scope only): the format conformance kit, fault-injecting and
 * asserting storages behind the {@code testkit} storage scheme, the operation model, qemu-img/qemu-io runners and
 * seeded property runs.
 */
module imago.testkit {
    requires transitive imago.api;
    requires transitive org.junit.jupiter.api;
    requires transitive quicktheories;

    exports imago.testkit;

    provides imago.api.spi.StorageProvider with imago.testkit.TestStorageProvider;
    uses imago.api.spi.FormatDriver;
}
