package imago.cli.io;

import imago.api.Mapping;
import imago.cli.text.Sizes;
import java.io.IOException;
import java.util.List;

/**
 * qemu-io's commands that report the image's allocation and size: {@code map}, {@code alloc},
 * {@code length}.
 */
final class AllocationCommands extends IoCommands {

    AllocationCommands(Context context) {
        super(context);
    }

    /** qemu-io's {@code map}. */
    int map(String name, List<String> argv) throws IOException {
        long size = image().size();
        long offset = 0;
        while (offset < size) {
            Mapping m = image().mapping(offset, size - offset);
            if (m.length() == 0) {
                out.flush();
                err.println(program + ": Unexpected end of image");
                return EIO;
            }
            boolean allocated = !(m instanceof Mapping.Unallocated);
            long num = m.length();
            // qemu-io's map_is_allocated: one line for a whole run of the same status
            while (offset + num < size) {
                Mapping next = image().mapping(offset + num, size - offset - num);
                if (next.length() == 0 || !(next instanceof Mapping.Unallocated) != allocated) {
                    break;
                }
                num += next.length();
            }
            out.println(Sizes.ioUnits(num) + " (0x" + Long.toHexString(num) + ") bytes "
                    + (allocated ? "    allocated" : "not allocated") + " at offset " + Sizes.ioUnits(offset)
                    + " (0x" + Long.toHexString(offset) + ")");
            offset += num;
        }
        return 0;
    }

    /** qemu-io's {@code alloc}. */
    int alloc(String name, List<String> argv) throws IOException {
        long start = size(argv.get(0));
        if (start < 0) {
            return (int) start;
        }
        long count = 512;
        if (argv.size() == 2) {
            count = size(argv.get(1));
            if (count < 0) {
                return (int) count;
            }
        }
        long size = image().size();
        long offset = start;
        long remaining = count;
        long allocated = 0;
        while (remaining > 0) {
            if (offset >= size) {
                count -= remaining;
                break;
            }
            Mapping m = image().mapping(offset, remaining);
            if (m.length() == 0) {
                count -= remaining;
                break;
            }
            if (!(m instanceof Mapping.Unallocated)) {
                allocated += m.length();
            }
            offset += m.length();
            remaining -= m.length();
        }
        out.println(allocated + "/" + count + " bytes allocated at offset " + Sizes.ioUnits(start));
        return 0;
    }

    /** qemu-io's {@code length}. */
    int length(String name, List<String> argv) throws IOException {
        out.println(Sizes.ioUnits(image().size()));
        return 0;
    }
}
