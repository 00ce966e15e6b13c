package imago.cli.command;

import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The words qemu-img 7.2 prints for an image a driver refuses, where imago's driver says more. A driver's message
 * leads with QEMU's sentence and adds where and why (for library users, and {@code --debug}); qemu-img prints the
 * sentence alone. Where QEMU's driver fails without words of its own (vhdx's {@code -EINVAL}), qemu-img's generic
 * {@code Could not open 'NAME': Invalid argument}; where it says only that a descriptor is invalid (vmdk), that.
 */
final class QemuReasons {
    /** QEMU's sentences that imago's drivers lead with, before {@code ": "} and imago's detail. */
    private static final List<String> SENTENCES = List.of("invalid VPC image", "Incorrect header checksum",
            "Invalid header magic", "No valid VHDX header found", "Image not in VMDK format", "qcow2 header too short",
            "File too small for a VHD header");
    /** QEMU's sentences that imago's drivers lead with, before {@code " ("} and imago's detail. */
    private static final List<String> SENTENCES_BEFORE_PARENTHESES = List.of("block-vpc: free_data_block_offset "
            + "points after the end of file. The image has been truncated.");
    /** The starts of imago's messages for damage QEMU's driver reports as {@code -EINVAL} alone. */
    private static final List<String> INVALID_ARGUMENT = List.of("not a VHDX image: ",
            "region table signature is not ", "metadata table signature is not ");
    /** imago's vhdx messages for metadata QEMU's driver refuses with {@code -ENOTSUP} alone. */
    private static final Pattern VHDX_NOT_SUPPORTED = Pattern.compile("metadata item \"[a-z0-9 ]+\" \\([0-9a-f-]+\\) "
            + "is missing|a required metadata item is unknown: [0-9a-f-]+");
    /** imago's dmg messages for a trailer QEMU's driver refuses with {@code -EINVAL} alone. */
    private static final Pattern DMG_TRAILER = Pattern.compile("the data fork offset \\d+ lies past the trailer"
            + "|the (resource fork|XML property list) \\(\\d+ bytes at \\d+\\) does not lie before the trailer"
            + "|the XML property list is larger than 16 MiB|the sector count \\d+ is negative"
            + "|the trailer names neither a resource fork nor an XML property list");
    /**
     * imago's vmdk descriptor messages that qemu-img words as an invalid descriptor: QEMU looks only for the
     * {@code createType} entry in the first MiB, so a foreign file opened as vmdk (larger than a descriptor may be,
     * not text, or not descriptor lines) is that too.
     */
    private static final Pattern DESCRIPTOR = Pattern.compile("the descriptor has no (version|createType) entry"
            + "|the descriptor of \\d+ bytes is larger than the limit of \\d+ bytes"
            + "|a descriptor line is not valid [-\\w]+|descriptor line \\d+: neither an entry, an extent nor a comment");
    /** An extent line QEMU refuses: its words, then imago's line number and reason in parentheses. */
    private static final Pattern EXTENT_LINE = Pattern.compile("(Invalid extent line: .*) \\(descriptor line \\d+: .*\\)");

    /**
     * imago's vhdx message for a BAT entry past the end of the file: QEMU's open prints it as it is (the first such
     * entry) before it fails with {@code -EINVAL}.
     */
    private static final Pattern VHDX_TRUNCATED = Pattern.compile("VHDX BAT entry \\d+ (start|end) offset \\d+ "
            + "points after end of file \\(\\d+\\)\\. Image has probably been truncated\\.");

    /**
     * imago's refusal to open an image of a format it only reads (bochs, cloop, dmg) for writing; QEMU's drivers of
     * those formats refuse a read-write open with {@code Image is read-only}.
     */
    private static final Pattern READ_ONLY_FORMAT = Pattern.compile("the [a-z0-9]+ format can only be read");

    /**
     * The file storage's message for an image another process holds: QEMU's error and its hint, which qemu-img prints
     * on two lines, the hint naming the file as QEMU names it.
     */
    private static final Pattern LOCKED = Pattern.compile("(Failed to (?:get (?:shared )?\"[a-z ]+\" lock|lock byte "
            + "\\d+))\\. Is another process using the image \\[(.*)\\]\\?");

    private QemuReasons() {
    }

    /**
     * qemu-img's two lines for {@code detail} if it is the file storage's refusal of a file another process holds,
     * naming the file {@code shown}, or {@code null}.
     */
    static String locked(String detail, String shown) {
        Matcher m = LOCKED.matcher(detail);
        return m.matches() ? m.group(1) + "\nIs another process using the image [" + (shown != null ? shown : m.group(2))
                + "]?" : null;
    }

    /** Whether {@code detail} is the library's refusal to open an image of a format it only reads for writing. */
    static boolean readOnlyFormat(String detail) {
        return READ_ONLY_FORMAT.matcher(detail).matches();
    }

    /** The line QEMU's driver prints itself before its open fails with {@code detail}'s damage, if it prints one. */
    static Optional<String> printedFirst(String detail) {
        return VHDX_TRUNCATED.matcher(detail).matches() ? Optional.of(detail) : Optional.empty();
    }

    /** qemu-img's reason for {@code detail}, a driver's message about the layer qemu-img calls {@code shown}. */
    static String of(String detail, String shown) {
        for (String sentence : SENTENCES) {
            if (detail.startsWith(sentence + ": ")) {
                return sentence;
            }
        }
        for (String sentence : SENTENCES_BEFORE_PARENTHESES) {
            if (detail.startsWith(sentence + " (")) {
                return sentence;
            }
        }
        for (String start : INVALID_ARGUMENT) {
            if (detail.startsWith(start)) {
                return "Could not open '" + shown + "': Invalid argument";
            }
        }
        if (VHDX_TRUNCATED.matcher(detail).matches() || DMG_TRAILER.matcher(detail).matches()) {
            return "Could not open '" + shown + "': Invalid argument";
        }
        if (VHDX_NOT_SUPPORTED.matcher(detail).matches()) {
            return "Could not open '" + shown + "': Operation not supported";
        }
        if (readOnlyFormat(detail)) {
            return "Image is read-only";
        }
        String locked = locked(detail, shown);
        if (locked != null) {
            return locked;
        }
        if (DESCRIPTOR.matcher(detail).matches()) {
            return "invalid VMDK image descriptor";
        }
        Matcher extent = EXTENT_LINE.matcher(detail);
        return extent.matches() ? extent.group(1) : detail;
    }
}
