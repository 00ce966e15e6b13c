package imago.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** {@link ZeroDetectingImage}: which writes become zero writes, and that nothing else is changed or lost. */
class ZeroDetectingImageTest {
    /** The calls an image received, as {@code method(args)} with buffers as their remaining length. */
    private final List<String> calls = new ArrayList<>();

    private Image recording() {
        return (Image) Proxy.newProxyInstance(Image.class.getClassLoader(), new Class<?>[] {Image.class},
                (proxy, method, args) -> {
                    List<Object> shown = new ArrayList<>();
                    for (Object a : args == null ? new Object[0] : args) {
                        shown.add(a instanceof ByteBuffer b ? b.remaining() : a);
                    }
                    calls.add(method.getName() + shown);
                    if (args != null && args.length > 0 && args[0] instanceof ByteBuffer b) {
                        b.position(b.limit()); // as a write consumes its buffer
                    }
                    return method.getReturnType() == boolean.class ? Boolean.FALSE
                            : method.getReturnType() == long.class ? 0L : null;
                });
    }

    @Test
    void writesOfZeroesBecomeZeroWrites() throws Exception {
        Image on = ZeroDetectingImage.of(recording(), false);
        ByteBuffer zeroes = ByteBuffer.allocate(200_000); // more than one chunk of the comparison
        on.write(zeroes, 4096);
        assertEquals(0, zeroes.remaining(), "consumed as a write consumes it");
        on.write(ByteBuffer.allocateDirect(512).asReadOnlyBuffer(), 0);
        on.writeCompressed(ByteBuffer.allocate(65536), 65536);
        assertEquals(List.of("writeZeroes[4096, 200000, []]", "writeZeroes[0, 512, []]",
                "writeZeroes[65536, 65536, []]"), calls);
        calls.clear();
        Image unmap = ZeroDetectingImage.of(recording(), true);
        unmap.write(ByteBuffer.allocate(512), 512);
        assertEquals(List.of("writeZeroes[512, 512, [MAY_UNMAP]]"), calls);
    }

    @Test
    void dataAndEmptyWritesAreWritten() throws Exception {
        Image on = ZeroDetectingImage.of(recording(), true);
        byte[] last = new byte[200_000];
        last[last.length - 1] = 1; // one non-zero byte past the first chunk
        on.write(ByteBuffer.wrap(last), 0);
        // a zero buffer's slice that starts past non-zero bytes is all zero: only the remaining bytes count
        on.write(ByteBuffer.wrap(new byte[] {7, 0, 0}).position(1), 9);
        on.write(ByteBuffer.allocate(0), 0);
        on.writeCompressed(ByteBuffer.wrap(new byte[] {0, 0, 3}), 0);
        assertEquals(List.of("write[200000, 0]", "writeZeroes[9, 2, [MAY_UNMAP]]", "write[0, 0]",
                "writeCompressed[3, 0]"), calls);
    }

    /** Every method of Image is forwarded: none falls back to the interface's default (which would refuse). */
    @Test
    void everyMethodIsForwarded() throws Exception {
        for (Method m : Image.class.getMethods()) {
            if (Modifier.isStatic(m.getModifiers())) {
                continue;
            }
            Method own = ZeroDetectingImage.class.getMethod(m.getName(), m.getParameterTypes());
            assertEquals(ZeroDetectingImage.class, own.getDeclaringClass(), () -> m + " is not forwarded");
        }
        Image image = ZeroDetectingImage.of(recording(), false);
        image.createSnapshot("s");
        image.makeEmpty();
        image.discard(0, 512);
        image.writeZeroes(0, 512, Set.of(ZeroFlag.NO_FALLBACK));
        assertFalse(image.supports(Feature.OVERWRITES));
        image.close();
        assertEquals(List.of("createSnapshot[s]", "makeEmpty[]", "discard[0, 512]", "writeZeroes[0, 512, "
                + "[NO_FALLBACK]]", "supports[OVERWRITES]", "close[]"), calls);
    }
}
