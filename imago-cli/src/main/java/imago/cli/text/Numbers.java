package imago.cli.text;

/** Integers as QEMU's {@code qemu_strtoul} reads them. */
public final class Numbers {

    private Numbers() {
    }

    /**
     * {@code text} as {@code qemu_strtoul(text, NULL, 0, ...)} reads it: optional leading white space and
     * sign, then decimal, {@code 0x} hex or {@code 0} octal digits up to the end of the text; a negative
     * value other than zero is out of range.
     *
     * @return the value, or -1 if the text is malformed or the value is larger than {@code max}
     */
    public static long unsigned(String text, long max) {
        String t = text.stripLeading();
        boolean negative = false;
        if (t.startsWith("+") || t.startsWith("-")) {
            negative = t.startsWith("-");
            t = t.substring(1);
        }
        int radix = 10;
        if (t.length() > 1 && (t.startsWith("0x") || t.startsWith("0X"))) {
            radix = 16;
            t = t.substring(2);
        } else if (t.length() > 1 && t.startsWith("0")) {
            radix = 8;
            t = t.substring(1);
        }
        if (t.isEmpty() || Character.digit(t.charAt(0), radix) < 0) {
            return -1;
        }
        long v;
        try {
            v = Long.parseUnsignedLong(t, radix);
        } catch (NumberFormatException e) {
            return -1;
        }
        if (negative && v != 0 || Long.compareUnsigned(v, max) > 0) {
            return -1;
        }
        return v;
    }
}
