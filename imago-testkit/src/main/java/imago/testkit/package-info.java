/**
 * Test support for imago's modules (test scope only). {@link imago.testkit.FormatConformanceTest} is the
 * conformance kit every format driver's tests extend; it opens images through {@code imago.probe} on
 * {@link imago.testkit.TestStorages} disks — {@link imago.testkit.FaultStorage}s (failing, power-losing, tearing
 * writes) behind {@link imago.testkit.AssertingStorage} handles — and checks them against
 * {@link imago.testkit.ImageModel}. {@link imago.testkit.Qemu} runs qemu-img and qemu-io ({@code check},
 * {@code compare}, {@code map} via {@link imago.testkit.QemuMap}); {@link imago.testkit.PropertyRuns} runs seeded,
 * shrinking properties.
 */
package imago.testkit;
