package imago.cli.io;

/**
 * The extended help of the io commands that take options ({@code help COMMAND}), in imago's own words. The layout
 * is qemu-io's (a blank line, a summary, an example, what the command does, one line per option in the form
 * {@code -X, -- what it does}, a blank line), and every option qemu-io 7.2 documents is listed, so a reader or a
 * script that looks for an option's line finds it; the prose is imago's (qemu-io's is GPL text and not copied).
 */
final class IoHelp {

    private IoHelp() {
    }

    static final String READ = """

             reads bytes from the image at an offset

             Example:
             'read -v 512 1k' - shows, in hexadecimal, the 1 KiB that starts 512 bytes into the image

             Reads LENGTH bytes at OFFSET and prints how long it took; with -v the bytes are dumped too,
             with -P they are compared with a pattern byte.
             -b, -- the VM state area instead of the disk (qcow2 keeps it past the virtual disk)
             -C, -- print the statistics as one comma-separated line
             -l, -- how many bytes -P checks
             -p, -- accepted and ignored, as in older versions
             -P, -- check that every byte read equals this pattern byte
             -q, -- print no statistics
             -s, -- where in the range -P starts checking
             -v, -- dump what was read, in hexadecimal and as text

            """;

    static final String WRITE = """

             writes bytes into the image at an offset

             Example:
             'write 512 1k' - fills the 1 KiB that starts 512 bytes into the image with 0xcd

             Writes LENGTH bytes at OFFSET, each the pattern byte (0xcd unless -P names another),
             and prints how long it took.
             -b, -- the VM state area instead of the disk (qcow2 keeps it past the virtual disk)
             -c, -- store the data compressed, one cluster at a time
             -f, -- force unit access: the data is on stable storage when the command ends
             -n, -- with -z, fail rather than write zero buffers when the image cannot mark zeroes
             -p, -- accepted and ignored, as in older versions
             -P, -- the pattern byte to write
             -s, -- take the bytes from this file instead of a pattern
             -C, -- print the statistics as one comma-separated line
             -q, -- print no statistics
             -u, -- with -z, the space may be given back to the host
             -z, -- write zeroes (the image may record them without writing data)

            """;

    static final String READV = """

             reads bytes at an offset into several buffers

             Example:
             'readv -v 512 1k 1k' - shows the 2 KiB that start 512 bytes into the image, read as two 1 KiB buffers

             Reads one range that starts at OFFSET into one buffer per LENGTH given, in order.
             -C, -- print the statistics as one comma-separated line
             -P, -- check that every byte read equals this pattern byte
             -v, -- dump what was read, in hexadecimal and as text
             -q, -- print no statistics

            """;

    static final String WRITEV = """

             writes bytes at an offset from several buffers

             Example:
             'writev 512 1k 1k' - writes two 1 KiB buffers of 0xcd, one after the other, from 512 bytes in

             Writes one range that starts at OFFSET from one buffer per LENGTH given, in order, each filled
             with the pattern byte.
             -P, -- the pattern byte to write
             -C, -- print the statistics as one comma-separated line
             -f, -- force unit access: the data is on stable storage when the command ends
             -q, -- print no statistics

            """;

    static final String AIO_READ = """

             starts a read of bytes at an offset into several buffers

             Example:
             'aio_read -v 512 1k 1k' - starts reading the 2 KiB that start 512 bytes into the image

             As readv, but the command returns once the request is made; its result and statistics are
             printed when it completes, which aio_flush waits for. The command itself succeeds even if
             the read or the -P check later fails.
             -C, -- print the statistics as one comma-separated line
             -P, -- check that every byte read equals this pattern byte
             -i, -- count the request as an invalid one in the statistics, and do not make it
             -v, -- dump what was read, in hexadecimal and as text
             -q, -- print no statistics

            """;

    static final String AIO_WRITE = """

             starts a write of bytes at an offset
             from several buffers

             Example:
             'aio_write 512 1k 1k' - starts writing two 1 KiB buffers of 0xcd from 512 bytes in

             As writev, but the command returns once the request is made; its result and statistics are
             printed when it completes, which aio_flush waits for. The command itself succeeds even if
             the write later fails.
             -P, -- the pattern byte to write
             -C, -- print the statistics as one comma-separated line
             -f, -- force unit access: the data is on stable storage when the request completes
             -i, -- count the request as an invalid one in the statistics, and do not make it
             -q, -- print no statistics
             -u, -- with -z, the space may be given back to the host
             -z, -- write zeroes (the image may record them without writing data)

            """;

    static final String DISCARD = """

             discards bytes of the image at an offset

             Example:
             'discard 512 1k' - tells the image the 1 KiB from 512 bytes in is no longer needed

             Discards LENGTH bytes at OFFSET; what they read afterwards is the image format's choice.
             -C, -- print the statistics as one comma-separated line
             -q, -- print no statistics

            """;

    static final String OPEN = """

             opens an image for the other commands

             Example:
             'open -n -o driver=raw /tmp/data' - opens /tmp/data as a raw image, writable, without the host cache

             Opens the image that the other commands then act on; one image is open at a time.
             -r, -- read-only
             -s, -- write into a temporary overlay, leaving the image unchanged
             -C, -- copy what is read from a backing file into the image
             -n, -- no host cache (the same as -t none)
             -U, -- share the image with other writers (no write lock)
             -k, -- native AIO (accepted; prefer -i)
             -i, -- the AIO mode: threads, native or io_uring (accepted; imago does its own I/O)
             -t, -- the cache mode
             -d, -- the discard mode
             -o, -- driver options as KEY=VALUE,... (driver=, file.filename=, ...)
            """;

    static final String REOPEN = """

             Opens the open image again with other options

             Example:
             'reopen -o lazy-refcounts=on' - asks a qcow2 image to write its refcounts lazily

             -r, -- read-only from now on
             -w, -- writable from now on
             -c, -- the cache mode from now on
             -o, -- driver options as KEY=VALUE,... (as for 'open')

            """;

    static final String SIGRAISE = """

             sends a signal to this process

             Example:
             'sigraise 15' - sends SIGTERM

             Raises the signal whose number is the one argument, as the C library's raise() does.

            """;
}
