package imago.cli.command;

/**
 * What {@code io -h} prints: qemu-io 7.2's usage laid out as qemu-io lays it out (its synopsis line, then each option
 * with its synopsis, in qemu-io's order, then where to find the commands), explained in imago's own words (qemu-io's
 * explanations are GPL prose); imago's own options come last.
 */
final class IoUsage {
    private IoUsage() {
    }

    /** The usage of {@code program}, the name the command was invoked by ({@code qemu-io}, {@code imago io}). */
    static String text(String program) {
        return """
                Usage: %1$s [OPTIONS]... [-c STRING]... [file]
                Runs qemu-io commands on a disk image (imago's implementation)

                  --object OBJECTDEF   an object that options name by its id: a 'secret'
                                       holding an image's passphrase, for one
                  --image-opts         read file as an option list (driver=..,file.filename=..)
                                       instead of a file name
                  -c, --cmd STRING     a command and its arguments to run; give it again
                                       for more, run in the order given
                  -f, --format FMT     the image's format, instead of probing it
                  -r, --read-only      open the image for reading only
                  -s, --snapshot       send writes to a temporary overlay, deleted at exit
                  -n, --nocache        bypass the host page cache; the same as -t none
                  -C, --copy-on-read   copy what reads find in backing files into the image
                  -m, --misalign       QEMU's buffer misalignment; accepted, imago's buffers
                                       are its own
                  -k, --native-aio     the same as -i native
                  -i, --aio=MODE       threads, native or io_uring; accepted, with imago's
                                       own I/O underneath (native needs the page cache off)
                  -t, --cache=MODE     none, off, directsync, writethrough, writeback (the
                                       default) or unsafe
                  -d, --discard=MODE   unmap (or on, the default) or ignore (or off)
                  -T, --trace [[enable=]<pattern>][,events=<file>][,file=<file>]
                                       QEMU's trace events; accepted, imago has none
                  -U, --force-share    open without taking the image's lock
                  -h, --help           print this and exit
                  -V, --version        print the version and exit
                  --gate=permissive|confined|deny
                                       which files an image may name and have opened
                                       (imago's own; permissive by default)
                  --debug              stack traces with errors, and debug log messages
                                       (imago's own)

                '%1$s -c help' lists the commands that -c and standard input take.
                """.formatted(program);
    }
}
