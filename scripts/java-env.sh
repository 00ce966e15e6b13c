# Sourced by ./imago, .ci/run and other scripts: finds a JDK >= 25 and exports JAVA_HOME for it.
# Order: $JAVA_HOME, then `java` on PATH, then /usr/lib/jvm/*. Fails with one line when none is found.

imago_java_version() { # prints the feature version of the java binary $1, or nothing
  # The JDK's release file says it without starting a JVM (each start costs ~50 ms, and ./imago runs
  # this on every call); a JDK without one is asked.
  local release line
  release="$(dirname "$(dirname "$1")")/release"
  if [ -f "$release" ]; then
    while IFS= read -r line; do
      if [[ $line =~ ^JAVA_VERSION=\"([0-9]+) ]]; then
        echo "${BASH_REMATCH[1]}"
        return
      fi
    done < "$release"
  fi
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}

imago_find_java() {
  local candidates=() c v
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  if command -v java >/dev/null 2>&1; then
    c=$(readlink -f "$(command -v java)"); candidates+=("${c%/bin/java}")
  fi
  for c in /usr/lib/jvm/*; do [ -d "$c" ] && candidates+=("$c"); done
  for c in "${candidates[@]}"; do
    [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    v=$(imago_java_version "$c/bin/java")
    if [ -n "$v" ] && [ "$v" -ge 25 ]; then
      export JAVA_HOME="$c"
      return 0
    fi
  done
  echo "imago: no JDK 25 or newer found (looked at \$JAVA_HOME, java on PATH, /usr/lib/jvm); install one or set JAVA_HOME" >&2
  return 1
}
