package imago.testkit;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * An image file as the kit hands it to qemu-img: {@code -f FORMAT FILE}, or for an encrypted layout's image
 * {@code --object secret,id=ID,data=... --image-opts driver=FORMAT,OPTION=ID,file.filename=FILE}, as users give
 * qemu-img a passphrase.
 *
 * @param file the image file (absolute, so that qemu-img finds its backing file next to it)
 * @param format its format
 * @param secret the layout's secret, or {@code null}
 */
record QemuImage(Path file, String format, Layout.Secret secret) {

    /** {@code qemu-img check}: status 0 clean, 2 corrupt, 3 leaks only, 63 no checks for the format. */
    Qemu.Output check() {
        return Qemu.run(dir(), command("check").toArray());
    }

    /** {@code qemu-img check -r all}. */
    Qemu.Output repair() {
        return Qemu.run(dir(), command("check", "-r", "all").toArray());
    }

    /** {@code qemu-img compare} of the image with the raw file {@code raw}: status 0 when the guest contents match. */
    Qemu.Output compare(Path raw) {
        if (secret == null) {
            return Qemu.compare(file, format, raw, "raw");
        }
        List<Object> c = command("compare");
        c.add("driver=raw,file.filename=" + raw.toAbsolutePath());
        return Qemu.run(dir(), c.toArray());
    }

    /** {@code qemu-img map --output=json}, parsed. */
    List<QemuMap.Entry> map() {
        if (secret == null) {
            return Qemu.map(file, format);
        }
        return QemuMap.parse(Qemu.ok(dir(), command("map", "--output=json").toArray()));
    }

    /** qemu-img's {@code subcommand} with {@code options}, then the image. */
    private List<Object> command(String subcommand, String... options) {
        List<Object> c = new ArrayList<>(List.of(Qemu.img(), subcommand));
        c.addAll(List.of(options));
        if (secret == null) {
            c.addAll(List.of("-f", format, file));
        } else {
            c.addAll(List.of("--object", secret.qemuObject(), "--image-opts", "driver=" + format + ","
                    + secret.option() + "=" + Layout.Secret.ID + ",file.filename=" + file.toAbsolutePath()));
        }
        return c;
    }

    private Path dir() {
        Path parent = file.toAbsolutePath().getParent();
        return parent != null ? parent : Path.of(".");
    }
}
