package imago.api;

/** Options for {@link Image#writeZeroes(long, long, java.util.Set)}. */
public enum ZeroFlag {
    /** The format and storage may deallocate the range instead of storing zeroes. */
    MAY_UNMAP,
    /** Fail instead of falling back to writing zero-filled buffers. */
    NO_FALLBACK
}
