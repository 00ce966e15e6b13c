package imago.cli.text;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** qemu-img's {@code -o name=value[,name=value...]} lists: {@code ,,} is a literal comma. */
public final class QemuOpts {

    private QemuOpts() {
    }

    /**
     * Parses every {@code -o} argument in turn into one map (later names replace earlier ones). A name
     * without {@code =} means {@code name=on}, as in QEMU.
     *
     * @throws IllegalArgumentException if a name is empty
     */
    public static Map<String, String> parse(List<String> args) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String arg : args) {
            for (String item : split(arg)) {
                if (item.isEmpty()) {
                    continue;
                }
                int eq = item.indexOf('=');
                String name = eq < 0 ? item : item.substring(0, eq);
                String value = eq < 0 ? "on" : item.substring(eq + 1);
                if (name.isEmpty()) {
                    throw new IllegalArgumentException("Invalid option list '" + arg + "': empty option name");
                }
                out.remove(name);
                out.put(name, value);
            }
        }
        return out;
    }

    private static List<String> split(String arg) {
        List<String> items = new java.util.ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < arg.length(); i++) {
            char c = arg.charAt(i);
            if (c == ',') {
                if (i + 1 < arg.length() && arg.charAt(i + 1) == ',') {
                    cur.append(',');
                    i++;
                } else {
                    items.add(cur.toString());
                    cur.setLength(0);
                }
            } else {
                cur.append(c);
            }
        }
        items.add(cur.toString());
        return items;
    }

    /** Whether an option list asks for the list of options: an item {@code help} or {@code ?}, as QEMU's. */
    public static boolean asksForHelp(List<String> args) {
        for (String arg : args) {
            for (String item : split(arg)) {
                if (item.equals("help") || item.equals("?")) {
                    return true;
                }
            }
        }
        return false;
    }

    /** A value as QEMU prints it in option lists: commas doubled. */
    public static String escape(String value) {
        return value.replace(",", ",,");
    }
}
