package imago.testkit;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.StorageLocation;
import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Path;

/**
 * The few calls of {@code imago.probe}'s user API the kit makes ({@code Imago.create}, {@code Imago.opener()...open()},
 * {@code Imago.probe}), reached at run time. The kit cannot depend on imago-probe when it is built: imago-probe's
 * tests use imago-raw, and imago-raw's and imago-storage-file's tests use this kit, so Maven's reactor would have a
 * cycle. Every test that runs the kit has imago-probe on its path (as a user's program has).
 */
final class ProbeApi {
    private static final MethodHandle CREATE;
    private static final MethodHandle OPENER;
    private static final MethodHandle LOCATION;
    private static final MethodHandle FORMAT;
    private static final MethodHandle WRITABLE;
    private static final MethodHandle SECRET;
    private static final MethodHandle OPTION;
    private static final MethodHandle OPEN;
    private static final MethodHandle PROBE;

    static {
        try {
            Class<?> imago = Class.forName("imago.probe.Imago");
            Class<?> opener = Class.forName("imago.probe.Opener");
            MethodHandles.Lookup l = MethodHandles.publicLookup();
            CREATE = l.findStatic(imago, "create", MethodType.methodType(void.class, StorageLocation.class,
                    String.class, CreateOptions.class));
            OPENER = l.findStatic(imago, "opener", MethodType.methodType(opener));
            LOCATION = l.findVirtual(opener, "location", MethodType.methodType(opener, StorageLocation.class));
            FORMAT = l.findVirtual(opener, "format", MethodType.methodType(opener, String.class));
            WRITABLE = l.findVirtual(opener, "writable", MethodType.methodType(opener, boolean.class));
            SECRET = l.findVirtual(opener, "secret", MethodType.methodType(opener, String.class, byte[].class));
            OPTION = l.findVirtual(opener, "option", MethodType.methodType(opener, String.class, String.class));
            OPEN = l.findVirtual(opener, "open", MethodType.methodType(Image.class));
            PROBE = l.findStatic(imago, "probe", MethodType.methodType(String.class, Path.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(new AssertionError("the conformance kit needs imago-probe on the "
                    + "test path (a test dependency of the module that runs it)", e));
        }
    }

    private ProbeApi() {
    }

    /** {@code Imago.create(location, format, options)}. @throws IOException as there */
    static void create(StorageLocation location, String format, CreateOptions options) throws IOException {
        invoke(() -> CREATE.invoke(location, format, options));
    }

    /**
     * {@code Imago.opener().location(location).format(format).writable(writable).open()}.
     *
     * @throws IOException as there
     */
    static Image open(StorageLocation location, String format, boolean writable) throws IOException {
        return open(location, format, writable, null);
    }

    /**
     * {@code Imago.opener().location(location).format(format).writable(writable)}, with {@code .secret(ID,
     * passphrase).option(keyOption, ID)} for an encrypted layout's {@code secret} (none if it is null), {@code .open()}.
     *
     * @throws IOException as there
     */
    static Image open(StorageLocation location, String format, boolean writable, Layout.Secret secret)
            throws IOException {
        return (Image) invoke(() -> {
            Object opener = WRITABLE.invoke(FORMAT.invoke(LOCATION.invoke(OPENER.invoke(), location), format),
                    writable);
            if (secret != null) {
                byte[] passphrase = secret.passphrase().getBytes(java.nio.charset.StandardCharsets.UTF_8);
                opener = OPTION.invoke(SECRET.invoke(opener, Layout.Secret.ID, passphrase), secret.option(),
                        Layout.Secret.ID);
            }
            return OPEN.invoke(opener);
        });
    }

    /** {@code Imago.probe(path)}. @throws IOException as there */
    static String probe(Path path) throws IOException {
        return (String) invoke(() -> PROBE.invoke(path));
    }

    /** A call through a method handle. */
    @FunctionalInterface
    private interface Call {
        Object call() throws Throwable;
    }

    private static Object invoke(Call call) throws IOException {
        try {
            return call.call();
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new AssertionError("unexpected " + e, e);
        }
    }
}
