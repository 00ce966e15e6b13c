/**
 * The luks format driver: LUKS1 and LUKS2 containers encrypted with AES, Serpent, Twofish or CAST5 (XTS, CBC, ECB or
 * CTR), unlocked with a passphrase. Bouncy Castle is optional: only the ciphers other than AES, the hash RIPEMD-160
 * and LUKS2 key slots with an Argon2 KDF need it.
 */
module imago.luks {
    requires imago.api;
    requires java.management;
    requires static org.bouncycastle.provider;

    provides imago.api.spi.EncryptionFormat with imago.luks.internal.LuksEncryptionFormat;
    provides imago.api.spi.FormatDriver with imago.luks.internal.LuksFormatDriver;
}
