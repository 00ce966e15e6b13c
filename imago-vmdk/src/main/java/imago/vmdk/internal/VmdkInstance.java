package imago.vmdk.internal;

import imago.api.CheckReport;
import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.api.ZeroFlag;
import imago.api.spi.BackingFacts;
import imago.api.spi.BackingReader;
import imago.api.spi.Capability;
import imago.api.spi.Checker;
import imago.api.spi.CompressedWriter;
import imago.api.spi.Dependency;
import imago.api.spi.FormatInstance;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;
import java.util.function.LongSupplier;

/**
 * One open VMDK: a descriptor and its extents, laid end to end in guest order. A monolithic image (sparse or
 * stream) is one sparse extent that holds its descriptor; otherwise the descriptor is a text file whose extent files
 * the probe module opens (through the {@link imago.api.OpenGate}) and {@link #attach attaches}, and whose
 * {@code parentFileNameHint} names the parent image (a vmdk).
 *
 * <p>On the first change after opening, the descriptor gets a new CID ({@link VmdkCid}); a delta disk reads and
 * allocates through its parent only while the parent's CID is its {@code parentCID} ({@link VmdkParentCheck}).
 */
final class VmdkInstance implements FormatInstance, CompressedWriter, Checker {
    private final Storage storage;
    private final String resource;
    private final VmdkDescriptor descriptor;
    private final String createType;
    private final boolean writable;
    /** Per descriptor extent (or the one monolithic extent): the line, or null for a monolithic image. */
    private final List<VmdkExtentLine> lines;
    private final VmdkExtent[] extents;
    private final List<Dependency> dependencies;
    private long[] starts;
    /** Opened for a check: sparse extents' tables past the end of their files read as empty, as QEMU reads them. */
    private boolean forCheck;
    private long size = -1;
    private final VmdkCid cid;
    /** For a delta disk: whether its parent still has the CID it was made from; null without a parent. */
    private final VmdkParentCheck parent;

    private VmdkInstance(Storage storage, VmdkDescriptor descriptor, String createType, boolean writable,
            List<VmdkExtentLine> lines, VmdkExtent[] extents, LongSupplier cids) {
        this.storage = storage;
        this.resource = storage.name();
        this.descriptor = descriptor;
        this.createType = createType;
        this.writable = writable;
        this.lines = lines;
        this.extents = extents;
        this.cid = new VmdkCid(storage, descriptor, cids);
        List<Dependency> deps = new ArrayList<>();
        Set<String> named = new LinkedHashSet<>();
        for (VmdkExtentLine l : lines) {
            if (l != null && l.fileName().isPresent() && l.access() != VmdkExtentLine.Access.NOACCESS) {
                named.add(l.fileName().get());
            }
        }
        for (String name : named) {
            boolean rw = lines.stream().anyMatch(l -> l != null && l.fileName().equals(Optional.of(name))
                    && l.access() == VmdkExtentLine.Access.RW);
            deps.add(new Dependency.ExtentFile(name, rw));
        }
        descriptor.parentFileNameHint().ifPresent(p -> deps.add(new Dependency.BackingFile(p, Optional.of("vmdk"))));
        this.dependencies = List.copyOf(deps);
        this.parent = descriptor.parentFileNameHint().isPresent()
                ? new VmdkParentCheck(resource, descriptor.parentCid()) : null;
    }

    /** A monolithic sparse or stream image: {@code extent} lives in {@code storage}, which holds the descriptor. */
    static VmdkInstance monolithic(Storage storage, VmdkDescriptor descriptor, VmdkSparseExtent extent,
            boolean writable, LongSupplier cids) {
        String type = extent.compressed() ? "streamOptimized" : "monolithicSparse";
        List<VmdkExtentLine> lines = new ArrayList<>();
        lines.add(null);
        VmdkInstance i = new VmdkInstance(storage, descriptor, type, writable, lines, new VmdkExtent[] {extent}, cids);
        i.layOut();
        return i;
    }

    /** An image described by the descriptor file in {@code storage}; its extent files are attached later. */
    static VmdkInstance described(Storage storage, VmdkDescriptor descriptor, boolean writable, boolean forCheck,
            LongSupplier cids) {
        List<VmdkExtentLine> lines = descriptor.extents();
        VmdkExtent[] extents = new VmdkExtent[lines.size()];
        for (int i = 0; i < lines.size(); i++) {
            VmdkExtentLine l = lines.get(i);
            if (l.type() == VmdkExtentLine.Type.ZERO) {
                extents[i] = new VmdkZeroExtent(storage.name(), l.bytes());
            } else if (l.access() == VmdkExtentLine.Access.NOACCESS) {
                extents[i] = new VmdkNoAccessExtent(storage.name(), l.bytes(), l.fileName().orElseThrow(), l.line());
            }
        }
        VmdkInstance instance = new VmdkInstance(storage, descriptor, descriptor.createType(), writable, lines, extents,
                cids);
        instance.forCheck = forCheck;
        if (Arrays.stream(extents).allMatch(e -> e != null)) {
            instance.layOut();
        }
        return instance;
    }

    @Override
    public List<Dependency> dependencies() {
        return dependencies;
    }

    /**
     * Opens the extents of the descriptor lines that name {@code dependency}'s file on {@code extentStorage}.
     *
     * @throws CorruptImageException if a sparse extent is damaged, or one sparse file is named by several lines
     * @throws imago.api.UnsupportedFeatureException for seSparse features QEMU does not read
     */
    @Override
    public void attach(Dependency dependency, Storage extentStorage) throws IOException {
        if (!(dependency instanceof Dependency.ExtentFile file)) {
            throw new IllegalArgumentException(resource + ": vmdk names no " + dependency);
        }
        boolean opened = false;
        for (int i = 0; i < lines.size(); i++) {
            VmdkExtentLine l = lines.get(i);
            if (l == null || extents[i] != null || !l.fileName().equals(Optional.of(file.storedName()))) {
                continue;
            }
            boolean rw = writable && l.access() == VmdkExtentLine.Access.RW;
            boolean sparse = l.type() == VmdkExtentLine.Type.SPARSE || l.type() == VmdkExtentLine.Type.VMFSSPARSE
                    || l.type() == VmdkExtentLine.Type.SESPARSE;
            if (sparse) {
                // a sparse file holds one extent's own grain tables: two lines cannot share it
                if (opened) {
                    throw new CorruptImageException(resource, descriptor.base(), "descriptor line " + l.line()
                            + ": the sparse extent file '" + file.storedName() + "' is named by several lines");
                }
                opened = true;
            }
            extents[i] = switch (l.type()) {
                case FLAT, VMFS -> new VmdkFlatExtent(extentStorage, l.offsetSectors() * VmdkDescriptor.SECTOR,
                        l.bytes(), rw);
                // QEMU opens a VMFSSPARSE extent as whichever sparse kind its magic says
                case SPARSE, VMFSSPARSE -> sparseByMagic(extentStorage, rw);
                case SESPARSE -> VmdkSeSparseExtent.open(extentStorage);
                case ZERO -> throw new IllegalStateException("a ZERO extent has no file");
            };
        }
        if (Arrays.stream(extents).allMatch(e -> e != null)) {
            layOut();
        }
    }

    /** A SPARSE or VMFSSPARSE extent file: {@code KDMV} or {@code COWD}, as its first bytes say (QEMU's rule). */
    private VmdkExtent sparseByMagic(Storage extentStorage, boolean rw) throws IOException {
        ByteBuffer magic = ByteBuffer.allocate(4);
        extentStorage.read(magic, 0);
        if (magic.flip().getInt(0) == VmdkSparseFiles.COWD_MAGIC) {
            return VmdkSparseFiles.openCowd(extentStorage, forCheck);
        }
        return VmdkSparseFiles.open(extentStorage, rw, forCheck);
    }

    /** Computes where each extent starts, once all are open. */
    private void layOut() {
        long[] s = new long[extents.length];
        long pos = 0;
        for (int i = 0; i < extents.length; i++) {
            s[i] = pos;
            pos += extents[i].size();
        }
        this.starts = s;
        this.size = pos;
    }

    private void ready() throws ImageException {
        if (starts == null) {
            throw new ImageException(resource, "not every extent file of the descriptor has been attached");
        }
    }

    @Override
    public long size() {
        if (size < 0) {
            throw new IllegalStateException(resource + ": not every extent file of the descriptor has been attached");
        }
        return size;
    }

    /** The index of the extent holding guest byte {@code offset} (inside the image). */
    private int index(long offset) {
        int i = Arrays.binarySearch(starts, offset);
        if (i < 0) {
            i = -i - 2;
        }
        // zero-sized extents share a start with the next one: take the last extent starting there
        while (i + 1 < starts.length && starts[i + 1] == offset) {
            i++;
        }
        return i;
    }

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        ready();
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        int i = index(offset);
        long base = starts[i];
        long inExtent = offset - base;
        return extents[i].mapping(base, inExtent, Math.min(maxLength, extents[i].size() - inExtent));
    }

    /** {@inheritDoc} A read that falls through to a parent needs the parent the delta disk was made from. */
    @Override
    public Mapping readMapping(long offset, long maxLength) throws IOException {
        Mapping m = mapping(offset, maxLength);
        if (parent != null && m instanceof Mapping.Unallocated) {
            parent.requireParent("read", offset);
        }
        return m;
    }

    @Override
    public void checkBacking(BackingFacts backing) {
        if (parent != null) {
            parent.check(backing);
        }
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        ready();
        if (!writable) {
            throw new ReadOnlyImageException(resource, "image is opened read-only");
        }
        if (parent != null && !(mapping(offset, length) instanceof Mapping.Data)) {
            parent.requireParent("write", offset); // allocating a grain copies the rest of it from the parent
        }
        int i = index(offset);
        long base = starts[i];
        long inExtent = offset - base;
        WriteTicket ticket = extents[i].beginWrite(base, inExtent, Math.min(length, extents[i].size() - inExtent),
                below);
        try {
            // before the caller writes: a refused write (a read-only extent) leaves the CID as it was
            cid.renew();
        } catch (IOException | RuntimeException e) {
            ticket.close();
            throw e;
        }
        return ticket;
    }

    /**
     * As QEMU's vmdk, which declares no zero-write flags: the block layer refuses a zero write that must not fall
     * back to writing zeroes before the driver sees it, even where zeroed-grain entries could serve it.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below)
            throws IOException {
        if (flags.contains(ZeroFlag.NO_FALLBACK)) {
            return 0;
        }
        return ensureZeroMapping(offset, length, flags.contains(ZeroFlag.MAY_UNMAP));
    }

    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        ready();
        if (!writable) {
            throw new ReadOnlyImageException(resource, "image is opened read-only");
        }
        int i = index(offset);
        long base = starts[i];
        long inExtent = offset - base;
        long n = Math.min(length, extents[i].size() - inExtent);
        if (extents[i] instanceof VmdkZeroExtent) {
            return n;
        }
        long zeroed = extents[i].ensureZero(inExtent, n);
        if (zeroed > 0) {
            cid.renew(); // the tables reach the file at the next flush, after this
        }
        return zeroed;
    }

    @Override
    public void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) throws IOException {
        ready();
        int i = index(offset);
        extents[i].readSpecial(dst, offset - starts[i]);
    }

    /**
     * {@inheritDoc} Grains of a streamOptimized extent are compressed and appended, each once; other extents
     * store the cluster the ordinary way (returns {@code false}), as QEMU's vmdk does for compressed writes.
     */
    @Override
    public boolean writeCompressed(ByteBuffer cluster, long offset) throws IOException {
        ready();
        if (!writable) {
            throw new ReadOnlyImageException(resource, "image is opened read-only");
        }
        int i = index(offset);
        if (!(extents[i] instanceof VmdkSparseExtent sparse) || !sparse.compressed()) {
            return false;
        }
        cid.renew();
        sparse.writeCompressed(starts[i], cluster, offset - starts[i]);
        return true;
    }

    /** Compressed writes need one cluster size for the whole image (QEMU's {@code vmdk_co_get_info}). */
    @Override
    public <C extends Capability> Optional<C> capability(Class<C> type) {
        if (type == CompressedWriter.class && clusterSize().isEmpty()) {
            return Optional.empty();
        }
        return FormatInstance.super.capability(type);
    }

    /** {@inheritDoc} As QEMU's vmdk check: see {@link VmdkCheck}. */
    @Override
    public CheckReport check(Repair repair) throws IOException {
        ready();
        return VmdkCheck.check(resource, List.of(extents), starts, repair);
    }

    @Override
    public void flush() throws IOException {
        for (VmdkExtent e : distinct()) {
            e.flush();
        }
        storage.flush();
    }

    @Override
    public void sync() throws IOException {
        Set<Storage> done = Collections.newSetFromMap(new IdentityHashMap<>());
        for (VmdkExtent e : extents) {
            if (e != null && e.storage() != null && done.add(e.storage()) && !e.storage().readOnly()) {
                e.storage().flush();
                e.storage().sync();
            }
        }
        if (done.add(storage)) {
            storage.sync();
        }
    }

    private List<VmdkExtent> distinct() {
        List<VmdkExtent> out = new ArrayList<>();
        Set<VmdkExtent> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (VmdkExtent e : extents) {
            if (e != null && seen.add(e)) {
                out.add(e);
            }
        }
        return out;
    }

    /**
     * The descriptor's file and every extent file, each counted once (QEMU's
     * {@code vmdk_co_get_allocated_file_size}); unknown if the descriptor's file cannot tell.
     */
    @Override
    public OptionalLong allocatedSize() throws IOException {
        OptionalLong own = storage.allocatedSize();
        if (own.isEmpty()) {
            return own;
        }
        long total = own.getAsLong();
        Set<Storage> counted = Collections.newSetFromMap(new IdentityHashMap<>());
        counted.add(storage);
        for (VmdkExtent e : extents) {
            if (e != null && e.storage() != null && counted.add(e.storage())) {
                total += e.storage().allocatedSize().orElse(0);
            }
        }
        return OptionalLong.of(total);
    }

    /** As QEMU's {@code vmdk_co_get_info}: the grain size when every extent is sparse alike, else none. */
    @Override
    public OptionalInt clusterSize() {
        VmdkExtent first = extents[0];
        for (VmdkExtent e : extents) {
            if (e.flat() != first.flat() || e.compressed() != first.compressed()
                    || !e.flat() && !e.grainSize().equals(first.grainSize())) {
                return OptionalInt.empty();
            }
        }
        return first.flat() ? OptionalInt.empty() : first.grainSize();
    }

    /** The largest grain of the sparse extents (QEMU's {@code pwrite_zeroes_alignment}). */
    @Override
    public OptionalInt zeroAlignment() {
        int max = 0;
        for (VmdkExtent e : extents) {
            max = Math.max(max, e.grainSize().orElse(0));
        }
        return max == 0 ? OptionalInt.empty() : OptionalInt.of(max);
    }

    /** Flat extents map into plain files, whose holes read as zero: QEMU's map shows them (BDRV_BLOCK_RECURSE). */
    @Override
    public boolean mapsStorageHoles() {
        return Arrays.stream(extents).anyMatch(VmdkExtent::flat);
    }

    /** A stream extent takes each grain once, whole, in any order. */
    @Override
    public boolean overwrites() {
        return Arrays.stream(extents).noneMatch(VmdkExtent::compressed);
    }

    /** QEMU's {@code ImageInfoSpecificVmdk}: create-type, cid, parent-cid and the extents. */
    @Override
    public Map<String, Object> formatSpecific() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("create-type", createType);
        m.put("cid", cid.current());
        m.put("parent-cid", descriptor.parentCid());
        List<Object> list = new ArrayList<>();
        for (int i = 0; i < extents.length; i++) {
            VmdkExtentLine l = lines.get(i);
            list.add(extents[i].info(l == null ? "" : l.type().name()));
        }
        m.put("extents", list);
        return m;
    }

    /** The descriptor, as read. */
    VmdkDescriptor descriptor() {
        return descriptor;
    }

    /** The extents, in guest order. */
    List<VmdkExtent> extents() {
        return List.of(extents);
    }

    @Override
    public void close() {
    }
}
