package imago.cow.internal;

/** The on-disk variants of the cow format, by the names {@code info} reports. */
enum CowVariant {
    /** QEMU 0.x–2.1 on 64-bit x86: the unpacked 1056-byte header. */
    QEMU_V2("qemu-v2"),
    /** QEMU on 32-bit x86: the same struct without padding, 1048 bytes. */
    QEMU_V2_32BIT("qemu-v2-32bit"),
    /** UML's first header, in the writing host's byte order. */
    UML_V1("uml-v1"),
    /** UML's v2: big-endian, 4096-byte name. */
    UML_V2("uml-v2"),
    /** UML's v3: big-endian, packed, with alignment. */
    UML_V3("uml-v3"),
    /** UML's v3 as old 64-bit builds wrote it: unpacked, with an 8-byte mtime. */
    UML_V3_BROKEN("uml-v3-broken");

    private final String displayName;

    CowVariant(String displayName) {
        this.displayName = displayName;
    }

    /** The name for {@code info}'s format-specific data. */
    String displayName() {
        return displayName;
    }
}
