package imago.testkit;

import imago.api.CreateOptions;
import imago.api.Preallocation;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One way to create images of a format for the {@link FormatConformanceTest conformance kit}: a name for
 * messages, the format's create options ({@code -o} style), the allocation unit whose boundaries the generated
 * offsets cluster around (a cluster, a sector), whether the image sits over a backing file (and of which format),
 * whether its images probe as raw, whether their granules are written once, and how they are made if not as
 * {@code Imago.create} makes them.
 *
 * @param name a short name for messages, e.g. {@code "4k clusters"}
 * @param options the create options
 * @param granularity the allocation unit in bytes (at least 512)
 * @param backed whether the kit gives the image a raw backing file
 * @param probesAsRaw whether images of this layout start with guest data and carry nothing a probe could see, so
 *        that probing picks raw's weak fallback (a fixed VHD, whose only header is a footer at the end), in imago
 *        as in qemu-img
 * @param backingFormat the format of the backing file the kit makes for a backed layout ({@code raw} unless the
 *        format needs its own, as a vmdk delta disk does): an image of it, created with no option, holding random
 *        data
 * @param writeOnce whether each granule of the images is written once, whole, in any order (a vmdk streamOptimized
 *        one, as QEMU's vmdk driver writes it): what the kit checks of them is in {@link #writingOnce()}
 * @param creator how the kit makes an image of this layout, or {@code null} for {@code Imago.create}
 * @param secret the secret an encrypted layout's images are created and opened with, or {@code null}
 * @param qemuOpens whether qemu-img opens images of this layout, when it knows the format (a LUKS2 container is
 *        past qemu-img 7.2's luks driver): if not, the kit's qemu-img checks leave them out
 */
public record Layout(String name, Map<String, String> options, int granularity, boolean backed,
        boolean probesAsRaw, String backingFormat, boolean writeOnce, Creator creator, Secret secret,
        boolean qemuOpens) {

    /** Validates and freezes the fields. */
    public Layout {
        Objects.requireNonNull(name, "name");
        options = Map.copyOf(options);
        Objects.requireNonNull(backingFormat, "backingFormat");
        if (granularity < 512) {
            throw new IllegalArgumentException("granularity " + granularity + " is below a sector");
        }
    }

    /**
     * The passphrase of an encrypted layout's images, given as users give it: in a {@link imago.api.Secrets secret}
     * called {@value #ID} that the option {@code option} names, when the kit creates an image
     * ({@link CreateOptions.Builder#secrets}) and opens one ({@code Opener.secret}, {@code Opener.option}), and in
     * qemu-img's runs as {@code --object secret,id=ID,data=...} with {@code --image-opts driver=FORMAT,option=ID,...}.
     *
     * @param option the create and open option naming the secret: {@code key-secret} (luks),
     *        {@code encrypt.key-secret} (qcow2)
     * @param passphrase the passphrase (ASCII without commas, for qemu-img's command line)
     */
    public record Secret(String option, String passphrase) {
        /** The secret's id. */
        public static final String ID = "kitsecret";

        /** Validates the fields. */
        public Secret {
            Objects.requireNonNull(option, "option");
            if (passphrase.isEmpty() || !passphrase.chars().allMatch(c -> c > ' ' && c < 127 && c != ',')) {
                throw new IllegalArgumentException("the kit's passphrases are printable ASCII without commas");
            }
        }

        /** The secrets of an open or create: a new set holding the passphrase under {@link #ID}. */
        imago.api.Secrets secrets() {
            return imago.api.Secrets.create().put(ID, passphrase.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }

        /** qemu's {@code --object} for it. */
        String qemuObject() {
            return "secret,id=" + ID + ",data=" + passphrase;
        }
    }

    /**
     * Makes an image the way a layout needs when {@code Imago.create} cannot (a vmdk of a createType imago does not
     * create, or split at a size small enough for a test): it puts the image's disks in {@link TestStorages}, the
     * main one under {@code name} and any other file under a name starting with {@code name}, so that the kit sees
     * them as the image's files.
     */
    @FunctionalInterface
    public interface Creator {
        /**
         * Creates the image on disk {@code name} as {@code options} say.
         *
         * @throws IOException if a disk cannot be written
         * @throws IllegalArgumentException if the options are refused, as {@code Imago.create} refuses them
         */
        void create(String name, CreateOptions options) throws IOException;
    }

    /**
     * A layout from {@code qemu-img -o} style options, e.g. {@code "cluster_size=4096,refcount_bits=2"}.
     *
     * @throws IllegalArgumentException if an option has no {@code =}
     */
    public static Layout of(String name, int granularity, String options) {
        Map<String, String> parsed = new LinkedHashMap<>();
        for (String o : options.split(",")) {
            if (o.isEmpty()) {
                continue;
            }
            int eq = o.indexOf('=');
            if (eq < 1) {
                throw new IllegalArgumentException("not name=value: " + o);
            }
            parsed.put(o.substring(0, eq), o.substring(eq + 1));
        }
        return new Layout(name, parsed, granularity, false, false, "raw", false, null, null, true);
    }

    /** This layout over a raw backing file. */
    public Layout overBackingFile() {
        return overBackingFile("raw");
    }

    /** This layout over a backing file that is an image of {@code format}. */
    public Layout overBackingFile(String format) {
        return new Layout(name + ", backed", options, granularity, true, probesAsRaw, format, writeOnce, creator,
                secret, qemuOpens);
    }

    /**
     * This layout, whose images take each granule once, whole, in any order (a vmdk streamOptimized one, as QEMU's
     * vmdk driver writes it), and refuse a write over a granule written already or over a part of one with an
     * {@link imago.api.UnsupportedFeatureException} of {@link imago.api.Feature#OVERWRITES}, after taking the granules
     * before it. The kit then checks that: the image says it has {@link imago.api.Feature#RANDOM_WRITES random writes}
     * but no overwrites, and refuses one; random operation sequences match a model that knows the rule; random contents
     * written granule by granule in a random order (zero granules skipped, as convert skips them) read back
     * bit-exactly, whole and in sampled reads, after the image is reopened; its own check finds it clean; and, where
     * qemu-img knows the format, {@code qemu-img check}, {@code compare} and {@code map} agree with it. A power loss
     * that cuts such a pass short is promised nothing, as in QEMU, but what it leaves must open and read whole, or be
     * refused with a specific {@link imago.api.ImageException} (never an unchecked exception or another I/O error).
     */
    public Layout writingOnce() {
        return new Layout(name, options, granularity, backed, probesAsRaw, backingFormat, true, creator, secret,
                qemuOpens);
    }

    /** This layout, whose images {@code creator} makes instead of {@code Imago.create}. */
    public Layout createdBy(Creator creator) {
        return new Layout(name, options, granularity, backed, probesAsRaw, backingFormat, writeOnce,
                Objects.requireNonNull(creator, "creator"), secret, qemuOpens);
    }

    /**
     * This layout, whose images probe as raw: the kit's probe test then expects raw to be picked for them, and
     * still that no other driver claims them.
     */
    public Layout probingAsRaw() {
        return new Layout(name, options, granularity, backed, true, backingFormat, writeOnce, creator, secret,
                qemuOpens);
    }

    /**
     * This layout, encrypted: its images are created and opened with {@code passphrase}, in a secret that the option
     * {@code keyOption} names ({@code key-secret} for luks, {@code encrypt.key-secret} for qcow2), and so are they in
     * the kit's qemu-img runs ({@code --object secret} and {@code --image-opts}). The other create options that make
     * the image encrypted ({@code encrypt.format=luks}) are the layout's own.
     */
    public Layout encrypted(String keyOption, String passphrase) {
        return new Layout(name, options, granularity, backed, probesAsRaw, backingFormat, writeOnce, creator,
                new Secret(keyOption, passphrase), qemuOpens);
    }

    /**
     * This layout, whose images qemu-img cannot open although it knows the format (a LUKS2 container: qemu-img 7.2's
     * luks driver reads LUKS1 only); the kit then runs none of its qemu-img checks on them.
     */
    public Layout beyondQemu() {
        return new Layout(name, options, granularity, backed, probesAsRaw, backingFormat, writeOnce, creator, secret,
                false);
    }

    /** The create options for an image of {@code size} bytes, preallocated as {@code preallocation}. */
    CreateOptions.Builder createOptions(long size, Preallocation preallocation) {
        CreateOptions.Builder b = CreateOptions.builder().size(size).preallocation(preallocation);
        options.forEach(b::option);
        if (secret != null) {
            b.secrets(secret.secrets()).option(secret.option(), Secret.ID);
        }
        return b;
    }

    @Override
    public String toString() {
        return name;
    }
}
