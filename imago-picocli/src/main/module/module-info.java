/**
 * picocli, unchanged, compiled from its published source at class-file version 69 (Java 25) instead
 * of the Java 5 class files of its jar: the JDK's ahead-of-time cache keeps no class files older than
 * version 50, so the jar's classes are loaded and linked from scratch on every start of the imago
 * command. The module keeps picocli's own name and package, so it cannot be resolved beside the
 * upstream jar.
 */
module info.picocli {
    requires static java.sql;

    exports picocli;
}
