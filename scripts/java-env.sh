# Sourced by ./imago, .ci/run and other scripts: finds a JDK >= 25 and exports JAVA_HOME for it.
# Order: $JAVA_HOME, then `java` on PATH, then /usr/lib/jvm/*. Fails with one line when none is found.

imago_jdk_25() { # whether $1 is a JDK of version 25 or newer
  local line v=""
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 1
  # The JDK's release file says it without starting a JVM (each start costs ~50 ms, and ./imago runs
  # this on every call), read by bash itself (no process at all); a JDK without one is asked.
  if [ -f "$1/release" ]; then
    while IFS= read -r line; do
      if [[ $line =~ ^JAVA_VERSION=\"([0-9]+) ]]; then
        v=${BASH_REMATCH[1]}
        break
      fi
    done < "$1/release"
  fi
  [ -n "$v" ] || v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1)
  [ -n "$v" ] && [ "$v" -ge 25 ]
}

imago_find_java() {
  local candidates=() c
  # $JAVA_HOME alone when it will do: looking for java on PATH starts processes, on every ./imago
  if [ -n "${JAVA_HOME:-}" ] && imago_jdk_25 "$JAVA_HOME"; then
    export JAVA_HOME
    return 0
  fi
  if command -v java >/dev/null 2>&1; then
    c=$(readlink -f "$(command -v java)"); candidates+=("${c%/bin/java}")
  fi
  for c in /usr/lib/jvm/*; do [ -d "$c" ] && candidates+=("$c"); done
  for c in "${candidates[@]}"; do
    if imago_jdk_25 "$c"; then
      export JAVA_HOME="$c"
      return 0
    fi
  done
  echo "imago: no JDK 25 or newer found (looked at \$JAVA_HOME, java on PATH, /usr/lib/jvm); install one or set JAVA_HOME" >&2
  return 1
}
