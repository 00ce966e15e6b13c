/** {@link imago.testkit.Qemu} runs qemu-img and qemu-io; {@link imago.testkit.PropertyRuns} runs seeded properties. */
package imago.testkit;
