#!/usr/bin/env bash
# Assembles the imago distribution from the module jars in $target/modules (copied there by the build):
#   make-dist.sh JAVA_HOME VERSION TARGET_DIR
# leaves $TARGET_DIR/imago-VERSION/ (runtime/ by jlink, lib/imago.aot and lib/imago-info.aot, bin/, share/, licenses/, README.md)
# and $TARGET_DIR/imago-VERSION-linux-x86_64.tar.gz. bin/, licenses/ and README.md are in
# $TARGET_DIR/dist-files (the filtered copy of src/dist).
set -euo pipefail
java_home=$1 version=$2 target=$3
name=imago-$version
stage=$target/$name
rm -rf "$stage" "$target/$name-linux-x86_64.tar.gz"
mkdir -p "$stage/lib"

# The runtime: every module in $target/modules, that is imago.cli and its run-time dependencies: what
# it finds through ServiceLoader (storages, formats, the slf4j provider) and zstd-jni, which imago.qcow2
# requires statically. jlink adds the JDK modules they require and no others (no java.logging, no
# java.sql). zstd-jni carries its native library for 17 platforms; only linux/amd64's is kept. Debug
# attributes stay: --debug prints stack traces with line numbers. Bouncy Castle's jar is signed, which jlink
# refuses unless told to drop the signature: imago calls its Argon2 directly, not through JCA, which would
# check it.
"$java_home/bin/jlink" --module-path "$target/modules" --add-modules ALL-MODULE-PATH --ignore-signing-information \
  --exclude-resources='regex:/com\.github\.luben\.zstd_jni/(aix|darwin|freebsd|win|linux/(?!amd64/)[^/]+)/.*' \
  --no-header-files --no-man-pages --output "$stage/runtime"

cp -r "$target/dist-files/." "$stage/"
chmod +x "$stage"/bin/*

# The man pages and the bash completion, from the command's own picocli model
"$stage/runtime/bin/java" -m imago.cli/imago.cli.command.Manuals "$stage/share" "$version"

# The AOT caches, trained and assembled by this runtime with the flags bin/imago uses (a cache is used
# only by a JVM with the same runtime and module options): lib/imago.aot for every command, and
# lib/imago-info.aot, trained on --version, info and map alone, for those (a smaller cache starts sooner), on
# images made beforehand by another JVM (the image writes stay out of that cache)
opts=(--enable-native-access=imago.storage.file,com.github.luben.zstd_jni --add-modules com.github.luben.zstd_jni)
"$stage/runtime/bin/java" "${opts[@]}" -m imago.cli/imago.cli.AotTraining images "$target/aot-training"
# The java.lang.invoke forms the info training resolves, added to the runtime's default class list
# (runtime/lib/classlist) before the caches are trained: JDK 25 regenerates an AOT cache's holder classes
# (DirectMethodHandle$Holder and the like) from the "@lambda-form-invoker" lines of that list alone, and every
# form missing from them is spun as a class when first used. The file storage's downcall (FFM) uses ~25 forms
# that the JDK's list lacks: ~23 classes and ~15 ms spun at the first open of every command otherwise.
"$stage/runtime/bin/java" -Djava.lang.invoke.MethodHandle.TRACE_RESOLVE=true "${opts[@]}" \
  -m imago.cli/imago.cli.AotTraining info "$target/aot-training" \
  | sed -n -E 's/^\[(LF|SPECIES)_RESOLVE\] ([^(]*[^ (]) \([a-z]+\)$/@lambda-form-invoker [\1_RESOLVE] \2/p' \
  | sort -u >> "$stage/runtime/lib/classlist"
for cache in imago imago-info; do
  training=()
  [ "$cache" = imago-info ] && training=(info "$target/aot-training")
  "$stage/runtime/bin/java" -XX:AOTMode=record -XX:AOTConfiguration="$target/$cache.aotconf" -Xlog:aot*=error,cds*=error \
    "${opts[@]}" -m imago.cli/imago.cli.AotTraining "${training[@]}"
  "$stage/runtime/bin/java" -XX:AOTMode=create -XX:AOTConfiguration="$target/$cache.aotconf" \
    -XX:AOTCache="$stage/lib/$cache.aot" -Xlog:aot*=error,cds*=error "${opts[@]}" -m imago.cli/imago.cli.AotTraining "${training[@]}"
  rm -f "$target/$cache.aotconf"
done
rm -rf "$target/aot-training"

tar -C "$target" --owner=0 --group=0 --numeric-owner --sort=name -czf "$target/$name-linux-x86_64.tar.gz" "$name"
echo "imago-dist: $target/$name-linux-x86_64.tar.gz ($(du -h "$target/$name-linux-x86_64.tar.gz" | cut -f1))"
