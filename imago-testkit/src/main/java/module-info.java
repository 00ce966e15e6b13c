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

    // TestStorageProvider is declared only in META-INF/services: the kit runs on the class path, and a provides
    // here would let service binding pull this module (and JUnit with it) onto the module path of every test
    // whose module uses StorageProvider (imago.cli through imago.probe), where surefire's launcher cannot run
    uses imago.api.spi.FormatDriver;
}
