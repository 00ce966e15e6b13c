package imago.cli.command;

import picocli.CommandLine.Parameters;

/** The {@code FILE} parameter of the commands whose only operand is the image. */
final class ImageFile {
    @Parameters(paramLabel = "FILE", description = "The image.")
    private String file;

    ImageFile() {
    }

    /** The parameter as {@link DirectRun} parsed it. */
    ImageFile(String file) {
        this.file = file;
    }

    /** The image's name as the user typed it. */
    String name() {
        return file;
    }
}
