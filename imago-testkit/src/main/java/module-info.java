/** Test support shared by imago's module tests: a qemu-img/qemu-io runner and seeded property runs. */
module imago.testkit {
    requires transitive org.junit.jupiter.api;
    requires transitive quicktheories;

    exports imago.testkit;
}
