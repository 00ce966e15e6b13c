package imago.probe;

import imago.api.ImageException;
import imago.api.StorageLocation;
import imago.api.UnknownFormatException;
import imago.api.spi.FormatDriver;
import imago.api.spi.StorageProvider;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.regex.Pattern;

/**
 * The installed format drivers and storage providers, loaded once with {@link ServiceLoader}. Names
 * are validated and must be unique: a duplicate fails loudly, naming both modules.
 */
final class Plugins {
    private static final Pattern NAME = Pattern.compile("[a-z0-9]+");

    private final Map<String, FormatDriver> drivers;
    private final Map<String, StorageProvider> storages;

    Plugins(Iterable<FormatDriver> driverList, Iterable<StorageProvider> storageList) {
        Map<String, FormatDriver> d = new LinkedHashMap<>();
        for (FormatDriver driver : driverList) {
            register(d, driver.name(), driver, "format driver");
        }
        Map<String, StorageProvider> s = new LinkedHashMap<>();
        for (StorageProvider provider : storageList) {
            register(s, provider.scheme(), provider, "storage provider");
        }
        this.drivers = Collections.unmodifiableMap(d);
        this.storages = Collections.unmodifiableMap(s);
    }

    private static <T> void register(Map<String, T> map, String name, T plugin, String kind) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalStateException(kind + " " + plugin.getClass().getName() + " in " + where(plugin)
                    + " has an invalid name '" + name + "' (expected [a-z0-9]+)");
        }
        T previous = map.putIfAbsent(name, plugin);
        if (previous != null) {
            throw new IllegalStateException("two " + kind + "s are named '" + name + "': "
                    + previous.getClass().getName() + " in " + where(previous) + " and "
                    + plugin.getClass().getName() + " in " + where(plugin));
        }
    }

    private static String where(Object plugin) {
        Module m = plugin.getClass().getModule();
        return m.isNamed() ? "module " + m.getName() : "the class path";
    }

    /** The plug-ins visible to this module (module path, or class path through META-INF/services). */
    static Plugins installed() {
        return Holder.INSTALLED;
    }

    /** The plug-ins of {@code layer} and its parents. */
    static Plugins of(ModuleLayer layer) {
        return new Plugins(ServiceLoader.load(layer, FormatDriver.class),
                ServiceLoader.load(layer, StorageProvider.class));
    }

    private static final class Holder {
        static final Plugins INSTALLED = load();

        /**
         * What {@code ServiceLoader.load(service)} finds. In the boot layer with an empty class path and the
         * system class loader as the context loader, that is exactly the boot layer's providers, and they are
         * loaded from the layer: the class path lookup that {@code load(service)} adds would read
         * {@code META-INF/services} in every module's jar (~20 ms for imago's ~20 modules) to find nothing more.
         */
        private static Plugins load() {
            ModuleLayer layer = Plugins.class.getModule().getLayer();
            if (layer == ModuleLayer.boot() && System.getProperty("java.class.path", "").isEmpty()
                    && Thread.currentThread().getContextClassLoader() == ClassLoader.getSystemClassLoader()) {
                return new Plugins(ServiceLoader.load(layer, FormatDriver.class),
                        ServiceLoader.load(layer, StorageProvider.class));
            }
            return new Plugins(ServiceLoader.load(FormatDriver.class), ServiceLoader.load(StorageProvider.class));
        }
    }

    List<FormatDriver> drivers() {
        return List.copyOf(drivers.values());
    }

    List<String> formatNames() {
        return new ArrayList<>(drivers.keySet());
    }

    FormatDriver driver(String name, String resource) throws UnknownFormatException {
        FormatDriver d = drivers.get(name);
        if (d == null) {
            throw new UnknownFormatException(resource, "Unknown driver '" + name + "'", formatNames());
        }
        return d;
    }

    StorageProvider storage(StorageLocation location) throws ImageException {
        StorageProvider p = storages.get(location.scheme());
        if (p == null) {
            throw new ImageException(location.toString(), "no storage provider for '" + location.scheme()
                    + "' locations is installed (installed: " + String.join(", ", storages.keySet()) + ")");
        }
        return p;
    }
}
