package imago.vpc.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Decodes the name of a differencing disk's parent from its parent locators: the relative Windows path
 * ({@code W2ru}) first, then a file URL ({@code MacX}), the absolute Windows path ({@code W2ku}), and last the
 * header's parent name (a bare file name). Windows separators become {@code /}. The result is an untrusted
 * name for the probe module to resolve and gate; names no host can mean (Windows device and UNC paths, NUL
 * characters) are refused here.
 */
final class VpcParentNames {
    /** A Windows path is at most 32767 UTF-16 units; a locator longer than this is not a name. */
    static final int MAX_LOCATOR_BYTES = 65536;
    private static final List<String> ORDER = List.of(VpcParentLocator.W2RU, VpcParentLocator.MACX,
            VpcParentLocator.W2KU);

    private VpcParentNames() {
    }

    /**
     * The parent's name as stored, decoded.
     *
     * @throws CorruptImageException if a chosen locator lies outside the file, does not decode, or names a
     *         device; or if the disk names no parent at all
     * @throws ImageLimitException if a chosen locator is longer than {@link #MAX_LOCATOR_BYTES}
     */
    static String parentName(Storage storage, VpcDynamicHeader header, long headerOffset, long fileSize)
            throws IOException {
        for (String code : ORDER) {
            for (VpcParentLocator l : header.locators()) {
                if (l.used() && l.platformCode().equals(code)) {
                    return decode(storage, l, headerOffset, fileSize);
                }
            }
        }
        String name = header.parentName();
        if (name.isEmpty()) {
            throw new CorruptImageException(storage.name(), headerOffset + 64, "the differencing disk names no "
                    + "parent: no W2ru, MacX or W2ku parent locator and an empty parent name");
        }
        return checked(storage.name(), headerOffset + 64, "parent name", name.replace('\\', '/'));
    }

    private static String decode(Storage storage, VpcParentLocator l, long headerOffset, long fileSize)
            throws IOException {
        String name = storage.name();
        long entryOffset = headerOffset + 576 + 24L * l.index();
        String what = "parent locator " + l.index() + " (" + l.platformCode() + ")";
        if (l.dataLength() > MAX_LOCATOR_BYTES) {
            throw new ImageLimitException(name, entryOffset + 8, what + " is " + l.dataLength()
                    + " bytes long, more than the limit of " + MAX_LOCATOR_BYTES);
        }
        if (l.dataOffset() < 0 || l.dataOffset() > fileSize - l.dataLength()) {
            throw new CorruptImageException(name, entryOffset + 16, what + " data at offset "
                    + Long.toUnsignedString(l.dataOffset()) + " (" + l.dataLength()
                    + " bytes) lies outside the file (" + fileSize + " bytes)");
        }
        ByteBuffer buf = ByteBuffer.allocate((int) l.dataLength());
        storage.read(buf, l.dataOffset());
        buf.flip();
        Charset cs = l.platformCode().equals(VpcParentLocator.MACX) ? StandardCharsets.UTF_8
                : StandardCharsets.UTF_16LE;
        String text;
        try {
            text = cs.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(buf).toString();
        } catch (CharacterCodingException e) {
            throw new CorruptImageException(name, l.dataOffset(), what + " is not valid " + cs.name(), e);
        }
        while (text.endsWith("\0")) {
            text = text.substring(0, text.length() - 1);
        }
        if (l.platformCode().equals(VpcParentLocator.MACX)) {
            text = fromFileUrl(text);
        } else {
            text = text.replace('\\', '/');
        }
        return checked(name, l.dataOffset(), what, text);
    }

    /** {@code file://localhost/a/b}, {@code file:///a/b} → {@code /a/b}; {@code file://./a} → {@code ./a}. */
    private static String fromFileUrl(String url) {
        if (url.startsWith("file://localhost/")) {
            return url.substring("file://localhost".length());
        }
        if (url.startsWith("file:///")) {
            return url.substring("file://".length());
        }
        if (url.startsWith("file://")) {
            return url.substring("file://".length());
        }
        return url;
    }

    private static String checked(String resource, long offset, String what, String text)
            throws CorruptImageException {
        if (text.startsWith("./")) {
            text = text.substring(2);
        }
        if (text.isEmpty() || text.indexOf('\0') >= 0) {
            throw new CorruptImageException(resource, offset, what + " is empty or holds a NUL character");
        }
        if (text.startsWith("//")) {
            // \\.\PhysicalDrive0, \\?\C:\..., \\server\share: device namespaces and network paths
            throw new CorruptImageException(resource, offset, what + " names a Windows device or network path '"
                    + text + "', which imago does not open");
        }
        return text;
    }
}
