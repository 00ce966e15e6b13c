package imago.nbd.internal.client;

import imago.nbd.internal.Nbd;

/** Words for the error numbers and commands of NBD replies. */
final class ErrorCodes {
    static final int EIO = Nbd.EIO;

    private ErrorCodes() {
    }

    /** The errno text of an NBD error value. */
    static String describe(int error) {
        return switch (error) {
            case Nbd.EPERM -> "Operation not permitted";
            case Nbd.EIO -> "Input/output error";
            case Nbd.ENOMEM -> "Cannot allocate memory";
            case Nbd.EINVAL -> "Invalid argument";
            case Nbd.ENOSPC -> "No space left on device";
            case Nbd.EOVERFLOW -> "Value too large for defined data type";
            case Nbd.ENOTSUP -> "Operation not supported";
            case Nbd.ESHUTDOWN -> "Cannot send after transport endpoint shutdown";
            default -> "error " + Integer.toUnsignedString(error);
        };
    }

    /** The command's name as the specification has it. */
    static String command(int type) {
        return switch (type) {
            case Nbd.CMD_READ -> "NBD_CMD_READ";
            case Nbd.CMD_WRITE -> "NBD_CMD_WRITE";
            case Nbd.CMD_FLUSH -> "NBD_CMD_FLUSH";
            case Nbd.CMD_TRIM -> "NBD_CMD_TRIM";
            case Nbd.CMD_WRITE_ZEROES -> "NBD_CMD_WRITE_ZEROES";
            case Nbd.CMD_BLOCK_STATUS -> "NBD_CMD_BLOCK_STATUS";
            default -> "NBD command " + type;
        };
    }
}
