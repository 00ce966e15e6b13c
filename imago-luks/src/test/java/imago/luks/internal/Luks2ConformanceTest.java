package imago.luks.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * LUKS2 containers ({@code luks-version=2}) against the conformance kit: AES-256 in XTS with plain64 IVs, and AES-256
 * in CBC with ESSIV over SHA-256, their key slots under PBKDF2 at its floor of 1000 iterations ({@code pbkdf=pbkdf2,
 * iter-time=1}: Argon2's memory would cost seconds per image). Unlike LUKS1 a LUKS2 data segment resizes in whole
 * sectors only (a size off them is refused), and qemu-img 7.2 cannot open LUKS2, so the kit's qemu-img checks leave
 * these layouts out; {@link Luks2CryptsetupTest} checks them against cryptsetup.
 */
class Luks2ConformanceTest extends FormatConformanceTest {
    Luks2ConformanceTest() {
        super("luks", FormatTraits.of(Preallocation.OFF, Preallocation.FALLOC, Preallocation.FULL).sizesIn(512)
                .readingUnwrittenBytesAsUndefined(),
                Layout.of("LUKS2 aes-256-xts-plain64", 4096, "luks-version=2,pbkdf=pbkdf2,iter-time=1")
                        .encrypted("key-secret", "kit-pass").beyondQemu(),
                Layout.of("LUKS2 aes-256-cbc-essiv:sha256", 512, "luks-version=2,pbkdf=pbkdf2,iter-time=1,"
                        + "cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256").encrypted("key-secret", "kit-pass")
                        .beyondQemu());
    }
}
