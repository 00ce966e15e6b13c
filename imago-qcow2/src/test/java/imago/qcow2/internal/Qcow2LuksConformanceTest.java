package imago.qcow2.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * qcow2 with {@code encrypt.format=luks} against the conformance kit, unlocked with a passphrase the kit gives as users
 * do (a secret that {@code encrypt.key-secret} names; {@code --object secret} and {@code --image-opts} for qemu-img):
 * AES-256-XTS in 64 KiB clusters, AES-128-CBC with ESSIV in 4 KiB clusters, and an overlay over a raw backing file.
 * PBKDF2 stays at its floor of 1000 iterations ({@code encrypt.iter-time=1}). Clusters never allocated read zeroes
 * (the kit holds every byte an image maps as zero or unallocated to zero), but a preallocated cluster decrypts the
 * file's zeroes to noise, as in QEMU ({@link Qcow2LuksPreallocationTest}), and so does the rest of a preallocated
 * last cluster once the image grows without preallocation: the kit holds unwritten bytes to whatever they first read,
 * and qemu-img to the same.
 */
class Qcow2LuksConformanceTest extends FormatConformanceTest {
    private static final String LUKS = "encrypt.format=luks,encrypt.iter-time=1";

    Qcow2LuksConformanceTest() {
        super("qcow2", FormatTraits.of(Preallocation.OFF, Preallocation.METADATA, Preallocation.FALLOC,
                Preallocation.FULL).sizesIn(512).refusingPreallocatedShrinks().readingUnwrittenBytesAsUndefined(),
                Layout.of("luks aes-256-xts, 64 KiB clusters", 65536, LUKS)
                        .encrypted("encrypt.key-secret", "kit-pass"),
                Layout.of("luks aes-128-cbc-essiv, 4 KiB clusters", 4096, LUKS + ",cluster_size=4096,"
                        + "encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,"
                        + "encrypt.ivgen-hash-alg=sha256").encrypted("encrypt.key-secret", "kit-pass"),
                Layout.of("luks, 4 KiB clusters", 4096, LUKS + ",cluster_size=4096")
                        .encrypted("encrypt.key-secret", "kit-pass").overBackingFile());
    }
}
