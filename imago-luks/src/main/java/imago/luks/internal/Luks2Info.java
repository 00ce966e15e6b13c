package imago.luks.internal;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code info}'s format-specific fields for LUKS2, imago's own (qemu-img 7.2 cannot open LUKS2): the cipher fields
 * with qemu-img's LUKS1 names, then the LUKS2 header's (version, sector size, sizes, seqid, label) and each key
 * slot's KDF and area. No key material and no salt appears.
 */
final class Luks2Info {
    private Luks2Info() {
    }

    static Map<String, Object> of(Luks2Header h) {
        LuksCipherSpec spec = h.segmentCipher();
        Luks2Metadata.Segment s = h.metadata().segment();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("luks-version", 2);
        m.put("cipher-alg", spec.algName());
        m.put("cipher-mode", spec.modeName());
        m.put("ivgen-alg", spec.ivgenName());
        if (spec.ivHash() != null) {
            m.put("ivgen-hash-alg", spec.ivHash().luksName());
        }
        m.put("payload-offset", s.offset());
        m.put("sector-size", s.sectorSize());
        if (s.ivTweak() != 0) {
            m.put("iv-tweak", s.ivTweak());
        }
        m.put("uuid", h.uuid());
        if (!h.label().isEmpty()) {
            m.put("label", h.label());
        }
        if (!h.subsystem().isEmpty()) {
            m.put("subsystem", h.subsystem());
        }
        m.put("header-size", h.hdrSize());
        m.put("keyslots-size", h.metadata().keyslotsSize());
        m.put("seqid", h.seqid());
        if (h.damaged() != null) {
            m.put("damaged-header-copy", h.damaged());
        }
        List<Object> slots = new ArrayList<>();
        for (Luks2Metadata.Keyslot k : h.metadata().keyslots()) {
            Map<String, Object> slot = new LinkedHashMap<>();
            slot.put("id", k.id());
            slot.put("priority", switch (k.priority()) {
                case 0 -> "ignore";
                case 2 -> "prefer";
                default -> "normal";
            });
            switch (k.kdf()) {
                case Luks2Metadata.Kdf.Pbkdf2 p -> {
                    slot.put("kdf", "pbkdf2");
                    slot.put("hash-alg", p.hash().luksName());
                    slot.put("iters", p.iterations());
                }
                case Luks2Metadata.Kdf.Argon2 a -> {
                    slot.put("kdf", a.type().name().toLowerCase(Locale.ROOT));
                    slot.put("time", a.time());
                    slot.put("memory", a.memory());
                    slot.put("cpus", a.cpus());
                }
            }
            slot.put("stripes", k.stripes());
            slot.put("af-hash", k.afHash().luksName());
            slot.put("encryption", k.areaEncryption());
            slot.put("key-offset", k.areaOffset());
            slot.put("area-size", k.areaSize());
            slots.add(slot);
        }
        m.put("slots", slots);
        return m;
    }
}
