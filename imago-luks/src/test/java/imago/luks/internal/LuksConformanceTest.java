package imago.luks.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * LUKS1 containers against the conformance kit, unlocked with a passphrase the kit gives as users do (a secret that
 * {@code key-secret} names; {@code --object secret} and {@code --image-opts} for qemu-img): AES-256 in XTS with
 * plain64 IVs (qemu-img's default) in 4 KiB steps, and AES-128 in CBC with ESSIV over SHA-256 in sector steps.
 * {@code iter-time=1} keeps PBKDF2 at its floor of 1000 iterations, so that each create and open costs milliseconds.
 * A new container's sectors decrypt the file's zeroes to noise, as in QEMU, so the kit holds unwritten bytes to
 * whatever they first read, and qemu-img to the same bytes.
 */
class LuksConformanceTest extends FormatConformanceTest {
    LuksConformanceTest() {
        super("luks", FormatTraits.of(Preallocation.OFF, Preallocation.FALLOC, Preallocation.FULL)
                .roundingSizesUpTo(512).readingUnwrittenBytesAsUndefined(),
                Layout.of("aes-256-xts-plain64", 4096, "iter-time=1").encrypted("key-secret", "kit-pass"),
                Layout.of("aes-128-cbc-essiv:sha256", 512, "cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,"
                        + "ivgen-hash-alg=sha256,hash-alg=sha1,iter-time=1").encrypted("key-secret", "kit-pass"));
    }
}
