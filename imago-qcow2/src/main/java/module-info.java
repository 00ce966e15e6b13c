/** The qcow2 format driver (QEMU copy-on-write v2/v3). */
module imago.qcow2 {
    requires imago.api;
    requires static com.github.luben.zstd_jni;

    provides imago.api.spi.FormatDriver with imago.qcow2.internal.Qcow2FormatDriver;

    // encrypt.format=luks: the LUKS code (imago.luks), found only when an image is encrypted
    uses imago.api.spi.EncryptionFormat;
}
