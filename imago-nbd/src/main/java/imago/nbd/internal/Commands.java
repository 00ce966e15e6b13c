package imago.nbd.internal;

import imago.api.Image;
import imago.api.ImageLimitException;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroDetectingImage;
import imago.api.ZeroFlag;
import imago.nbd.DetectZeroes;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/** Serves the requests of one connection on its image and sends their replies. Thread-safe. */
final class Commands {
    /** The most descriptors one block status chunk carries (8 bytes each). */
    static final int MAX_DESCRIPTORS = 1 << 16;

    private final Negotiated session;
    private final Export export;
    private final Image image;
    private final Replies replies;
    private final BufferPool buffers;

    Commands(Negotiated session, Replies replies, BufferPool buffers) {
        this.session = session;
        this.export = session.export();
        // detect-zeroes as QEMU's block layer does it, and as imago's Opener does for the detect-zeroes option
        this.image = export.detectZeroes() == DetectZeroes.OFF ? export.image()
                : ZeroDetectingImage.of(export.image(), export.detectZeroes() == DetectZeroes.UNMAP);
        this.replies = replies;
        this.buffers = buffers;
    }

    /** Serves {@code r} (its payload already read, for a write) and replies. @throws IOException if replying fails */
    void serve(Request r, ByteBuffer payload) throws IOException {
        int refused = r.check(session);
        if (refused != 0) {
            error(r, refused, refusal(r, refused));
            return;
        }
        try {
            switch (r.type()) {
                case Nbd.CMD_READ -> read(r);
                case Nbd.CMD_WRITE -> {
                    image.write(payload, r.offset());
                    done(r);
                }
                case Nbd.CMD_FLUSH -> {
                    image.flush();
                    ok(r);
                }
                case Nbd.CMD_TRIM -> {
                    if (export.unmap() && r.length() > 0) {
                        image.discard(r.offset(), r.length());
                    }
                    done(r);
                }
                case Nbd.CMD_WRITE_ZEROES -> {
                    zero(r);
                    done(r);
                }
                case Nbd.CMD_CACHE -> ok(r);
                case Nbd.CMD_BLOCK_STATUS -> blockStatus(r);
                default -> error(r, Nbd.EINVAL, "unknown command " + r.type());
            }
        } catch (UnsupportedFeatureException e) {
            error(r, Nbd.ENOTSUP, e.getMessage());
        } catch (ReadOnlyImageException e) {
            error(r, Nbd.EPERM, e.getMessage());
        } catch (ImageLimitException e) {
            error(r, Nbd.ENOSPC, e.getMessage());
        } catch (IllegalArgumentException e) {
            error(r, Nbd.EINVAL, e.getMessage());
        } catch (OutOfMemoryError e) {
            error(r, Nbd.ENOMEM, "out of memory");
        } catch (IOException | RuntimeException e) {
            error(r, Nbd.EIO, e.getMessage());
        }
    }

    private static String refusal(Request r, int error) {
        return switch (error) {
            case Nbd.EPERM -> "the export is read-only";
            case Nbd.ENOSPC -> "the request ends past the end of the export";
            default -> "invalid request (command " + r.type() + ", flags 0x" + Integer.toHexString(r.flags())
                    + ", offset " + Long.toUnsignedString(r.offset()) + ", length " + r.length() + ")";
        };
    }

    /** Flushes after a change asked with FUA, then replies success. */
    private void done(Request r) throws IOException {
        if ((r.flags() & Nbd.CMD_FLAG_FUA) != 0) {
            image.flush();
        }
        ok(r);
    }

    private void ok(Request r) throws IOException {
        replies.simple(r.cookie(), 0, null);
    }

    /** An error reply: a structured error chunk (which carries the message) when negotiated, else a simple one. */
    void error(Request r, int error, String message) throws IOException {
        if (session.structured()) {
            replies.errorChunk(r.cookie(), error, message);
        } else {
            replies.simple(r.cookie(), error, null);
        }
    }

    private void zero(Request r) throws IOException {
        if (r.length() == 0) {
            return;
        }
        Set<ZeroFlag> flags = EnumSet.noneOf(ZeroFlag.class);
        if ((r.flags() & Nbd.CMD_FLAG_NO_HOLE) == 0 && export.unmap()) {
            flags.add(ZeroFlag.MAY_UNMAP);
        }
        if ((r.flags() & Nbd.CMD_FLAG_FAST_ZERO) != 0) {
            flags.add(ZeroFlag.NO_FALLBACK);
        }
        image.writeZeroes(r.offset(), r.length(), flags);
    }

    private void read(Request r) throws IOException {
        int length = (int) r.length();
        if (!session.structured()) {
            ByteBuffer data = buffers.take(length);
            try {
                image.read(data, r.offset());
                replies.simple(r.cookie(), 0, data.flip());
            } finally {
                buffers.give(data);
            }
            return;
        }
        if (length == 0) {
            replies.chunk(r.cookie(), true, Nbd.REPLY_TYPE_NONE, ByteBuffer.allocate(0), null);
            return;
        }
        boolean oneChunk = (r.flags() & Nbd.CMD_FLAG_DF) != 0;
        List<long[]> runs = oneChunk ? List.<long[]>of(new long[] {r.offset(), length, 0}) : zeroRuns(r);
        for (int i = 0; i < runs.size(); i++) {
            long[] run = runs.get(i);
            boolean last = i == runs.size() - 1;
            if (run[2] != 0) {
                replies.chunk(r.cookie(), last, Nbd.REPLY_TYPE_OFFSET_HOLE,
                        ByteBuffer.allocate(12).putLong(run[0]).putInt((int) run[1]).flip(), null);
            } else {
                ByteBuffer data = buffers.take((int) run[1]);
                try {
                    image.read(data, run[0]);
                    replies.chunk(r.cookie(), last, Nbd.REPLY_TYPE_OFFSET_DATA,
                            ByteBuffer.allocate(8).putLong(run[0]).flip(), data.flip());
                } finally {
                    buffers.give(data);
                }
            }
        }
    }

    /** The read range as runs {offset, length, 1 if it reads as zeroes} of alternating kinds. */
    private List<long[]> zeroRuns(Request r) throws IOException {
        List<long[]> runs = new ArrayList<>();
        long pos = r.offset();
        long end = r.offset() + r.length();
        while (pos < end) {
            var e = image.extent(pos, end - pos);
            long zero = e.zero() ? 1 : 0;
            long[] last = runs.isEmpty() ? null : runs.getLast();
            if (last != null && last[2] == zero) {
                last[1] += e.length();
            } else {
                runs.add(new long[] {pos, e.length(), zero});
            }
            pos += e.length();
        }
        return runs;
    }

    private void blockStatus(Request r) throws IOException {
        boolean one = (r.flags() & Nbd.CMD_FLAG_REQ_ONE) != 0;
        List<MetaContext> contexts = session.contexts();
        for (int i = 0; i < contexts.size(); i++) {
            MetaContext c = contexts.get(i);
            List<long[]> descriptors = descriptors(c, r.offset(), r.length(), one);
            ByteBuffer payload = ByteBuffer.allocate(4 + 8 * descriptors.size()).putInt(c.id());
            for (long[] d : descriptors) {
                payload.putInt((int) d[0]).putInt((int) d[1]);
            }
            replies.chunk(r.cookie(), i == contexts.size() - 1, Nbd.REPLY_TYPE_BLOCK_STATUS, payload.flip(), null);
        }
    }

    /** {length, flags} descriptors from {@code offset}, equal neighbours merged, at most {@link #MAX_DESCRIPTORS}. */
    private List<long[]> descriptors(MetaContext c, long offset, long length, boolean one) throws IOException {
        List<long[]> out = new ArrayList<>();
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            long[] s = c.status(image, pos, end - pos);
            long[] last = out.isEmpty() ? null : out.getLast();
            if (last != null && last[1] == s[1]) {
                last[0] += s[0];
            } else if (one && last != null || out.size() == MAX_DESCRIPTORS) {
                break;
            } else {
                out.add(s);
            }
            pos += s[0];
        }
        return out;
    }
}
