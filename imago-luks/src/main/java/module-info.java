/** The luks format driver: LUKS1 containers encrypted with AES (XTS or CBC), unlocked with a passphrase. */
module imago.luks {
    requires imago.api;
    requires java.management;

    provides imago.api.spi.FormatDriver with imago.luks.internal.LuksFormatDriver;
}
