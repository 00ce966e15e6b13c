/**
 * The luks format driver: LUKS1 and LUKS2 containers encrypted with AES (XTS or CBC), unlocked with a passphrase.
 * Bouncy Castle is optional: only LUKS2 key slots with an Argon2 KDF need it.
 */
module imago.luks {
    requires imago.api;
    requires java.management;
    requires static org.bouncycastle.provider;

    provides imago.api.spi.EncryptionFormat with imago.luks.internal.LuksEncryptionFormat;
    provides imago.api.spi.FormatDriver with imago.luks.internal.LuksFormatDriver;
}
