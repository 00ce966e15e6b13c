package imago.api.spi;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Measurement;
import imago.api.StorageLocation;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.Set;

/**
 * A disk-image format. Stateless, found with {@link java.util.ServiceLoader}; the constructor does no
 * work. A driver describes guest bytes as mappings ({@link FormatInstance}); it never opens a file by
 * itself: files an image names are reported as {@link Dependency dependencies} and opened by the probe
 * module through the {@link imago.api.OpenGate}.
 */
public interface FormatDriver {

    /** The stable format name, {@code [a-z0-9]+}, unique among installed drivers (e.g. {@code qcow2}). */
    String name();

    /**
     * Whether images of this format can only be read (dmg, cloop, bochs): the probe module then refuses a
     * writable open with a {@link imago.api.ReadOnlyImageException} before {@link #open} runs.
     *
     * @implSpec The default says no.
     */
    default boolean readOnly() {
        return false;
    }

    /**
     * File-name endings (".dmg") that make the probe module answer {@link Confidence#NAMED} for this format when
     * {@link #probe} finds nothing, for formats whose bytes carry no mark at the start (QEMU probes dmg so). Names
     * stored inside images are never probed this way: only the image being opened.
     *
     * @implSpec The default names none.
     */
    default java.util.Set<String> probedSuffixes() {
        return java.util.Set.of();
    }

    /**
     * Whether {@code qemu-img info --output=json} shows a {@code dirty-flag} for images of this format: QEMU's
     * drivers that have no {@code get_info} (the read-only ones, parallels) show none, and imago's info follows.
     *
     * @implSpec The default says yes exactly when the format is not {@link #readOnly() read-only}.
     */
    default boolean reportsDirtyFlag() {
        return !readOnly();
    }

    /**
     * Whether a newly created image without a backing file reads as zeroes wherever nothing was written yet (QEMU's
     * "has zero init"), so that {@code convert} may leave the source's zeroes unwritten. LUKS is the exception: its
     * sectors never written decrypt to noise.
     *
     * @implSpec The default says yes.
     */
    default boolean createsZeroedImages() {
        return true;
    }

    /** How many leading bytes {@link #probe} needs to look at. */
    int probeLength();

    /**
     * Says whether {@code head} (the first {@code min(probeLength(), storageSize)} bytes, read-only) is
     * an image of this format. Pure and cheap: no I/O, no exceptions for any input.
     */
    Confidence probe(ByteBuffer head, long storageSize);

    /**
     * Opens one layer on {@code storage}.
     *
     * @throws imago.api.CorruptImageException if the metadata is inconsistent
     * @throws imago.api.UnsupportedFeatureException if the image needs a feature the driver lacks
     * @throws IOException if the storage cannot be read
     */
    FormatInstance open(Storage storage, OpenContext context) throws IOException;

    /**
     * Refuses {@code options} that {@link #create} would refuse, before any file of the new image exists: {@code
     * Imago.create} calls it before it creates (or empties) the image's file and the {@link #createdFiles} files, so
     * that a refused create leaves no file behind and an existing file as it was. A driver checks here what {@code
     * qemu-img create} refuses before it makes the file (qcow2's and LUKS's option values), and leaves to {@link
     * #create} what qemu-img refuses only after it made the file (it leaves that file behind, empty).
     *
     * @param location where the new image is to be, for messages
     * @implSpec The default checks nothing.
     * @throws IllegalArgumentException if an option is unknown or invalid for this format (qemu-img's message)
     * @throws imago.api.UnsupportedFeatureException if the options need what is not installed
     * @throws IOException if the check cannot be made
     */
    default void checkCreate(StorageLocation location, CreateOptions options) throws IOException {
    }

    /**
     * Writes a new, empty image of this format to {@code storage}, which is empty and writable.
     *
     * @throws IllegalArgumentException if an option is unknown or invalid for this format
     * @throws IOException if the storage cannot be written
     */
    void create(Storage storage, CreateOptions options) throws IOException;

    /**
     * Writes a new image as {@link #create(Storage, CreateOptions)}, with the files {@link #createdFiles}
     * named already created (at the image's size) and open, in that order, for formats that write into
     * them too (preallocating an external data file). The caller syncs and closes them.
     *
     * @implSpec The default ignores {@code createdFiles} and calls {@link #create(Storage, CreateOptions)}.
     * @throws IllegalArgumentException if an option is unknown or invalid for this format
     * @throws IOException if the storage cannot be written
     */
    default void create(Storage storage, CreateOptions options, List<Storage> createdFiles) throws IOException {
        create(storage, options);
    }

    /**
     * The files a new image with {@code options} keeps data in besides its own (e.g. an external data
     * file): {@code Imago.create} creates each as an empty raw file of the image's size, resolved
     * against the new image's location, before it calls {@link #create}.
     *
     * @implSpec The default names none.
     */
    default List<Dependency> createdFiles(CreateOptions options) {
        return List.of();
    }

    /**
     * The files a new image at {@code location} keeps data in besides its own, as {@link #createdFiles(CreateOptions)}
     * names them, for formats whose file names derive from the image's own (VMDK's extent files): {@code Imago.create}
     * creates each, resolved against the new image's location, and hands them to {@link #create(Storage,
     * CreateOptions, List)}, which sizes and fills them.
     *
     * @implSpec The default is {@link #createdFiles(CreateOptions)}.
     */
    default List<Dependency> createdFiles(StorageLocation location, CreateOptions options) {
        return createdFiles(options);
    }

    /**
     * How large a file of this format created with {@code options} would be: empty (no {@code source}) or
     * holding {@code source}'s guest data ({@code qemu-img measure}; {@code source} may be {@code null}, and then
     * {@code options} give the size); empty when the format cannot tell.
     *
     * @implSpec The default cannot tell.
     * @throws IllegalArgumentException if an option is unknown or invalid
     * @throws IOException if {@code source} cannot be read
     */
    default Optional<Measurement> measure(CreateOptions options, Image source)
            throws IOException {
        return Optional.empty();
    }

    /**
     * The options of a new image as {@code qemu-img create}'s "Formatting" line lists them, in its order
     * and with the defaults it shows.
     *
     * @param options the options the image is created with
     * @param preallocation the preallocation mode as the user named it, or {@code null} if not named
     * @implSpec The default lists the format options as given, then {@code size}, {@code backing_file},
     *           {@code backing_fmt} and {@code preallocation}, each when present.
     */
    default SequencedMap<String, String> formattingOptions(CreateOptions options, String preallocation) {
        SequencedMap<String, String> out = new LinkedHashMap<>(options.formatOptions());
        options.size().ifPresent(s -> out.put("size", Long.toString(s)));
        options.backingFile().ifPresent(b -> out.put("backing_file", b));
        options.backingFormat().ifPresent(f -> out.put("backing_fmt", f));
        if (preallocation != null) {
            out.put("preallocation", preallocation);
        }
        return out;
    }

    /**
     * The open options ({@link OpenContext#options()}) {@link #open} takes, by qemu's names (raw's {@code offset},
     * qcow2's {@code l2-cache-size}, luks' {@code key-secret}). An image whose top layer is of this format is opened
     * only if each option the user gave is one of these, as QEMU refuses an option its format driver does not
     * consume ("Block format 'raw' does not support the option 'foo'"): an option silently ignored could make reads
     * and writes land elsewhere than asked. The options the opener sets itself ({@link OpenContext#CHECK_OPTION},
     * {@link OpenContext#NO_IO_OPTION}) need not be listed.
     *
     * @implSpec The default takes none.
     */
    default Set<String> openOptionNames() {
        return Set.of();
    }

    /**
     * The {@code -o} option names {@link #create} accepts.
     *
     * @implSpec The default accepts none.
     */
    default Set<String> createOptionNames() {
        return Set.of();
    }

    /**
     * Whether images of this format can record a backing file.
     *
     * @implSpec The default says no.
     */
    default boolean supportsBacking() {
        return false;
    }

    /**
     * Whether images of this format record their backing file's format (so that it need not be probed).
     *
     * @implSpec The default says yes exactly when the format supports backing files.
     */
    default boolean recordsBackingFormat() {
        return supportsBacking();
    }
}
