package imago.nbd;

/** What the server makes of a client's write whose data is all zeroes (QEMU's {@code detect-zeroes} option). */
public enum DetectZeroes {
    /** Written as it is (the default). */
    OFF,
    /** Turned into a zero write, which the format may store as a zero flag. */
    ON,
    /** Turned into a zero write that may also free space; needs trims that unmap. */
    UNMAP
}
