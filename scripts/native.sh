#!/usr/bin/env bash
# Builds and tests the native library with direct `zig build-lib` and `zig test`
# calls, not through `zig build`: on a cold machine Zig spends about 150 s
# compiling its own build runner before `zig build` starts, against about 10 s
# for the library itself. `zig build` and `zig build test` in zig/ still work
# and do the same.
#
#   native.sh build                 zig/zig-out/lib/libshm_cache.{so,dylib}, ReleaseFast for
#                                   this machine, and its test build zig/zig-out/test/ (the
#                                   same library plus the fault points the crash tests use,
#                                   from src/test_exports.zig; scripts/test.sh hands it to the
#                                   suites as SHM_CACHE_LIB); skipped when the sources, the
#                                   arguments and the Zig version match the last build (a
#                                   stamp beside it)
#   native.sh test                  the unit tests beside the code, then load_test.zig
#                                   against the library that `build` made
#   native.sh release TARGET OUT    a stripped ReleaseFast build for a Zig target triple
#                                   (e.g. aarch64-linux-gnu.2.17), written to OUT (a path
#                                   relative to the caller's directory, or absolute);
#                                   skipped by a stamp too
#
# The arguments every build shares (shared library, libc, name, root source)
# are in zig/shm_cache.rsp, a Zig response file; lib/ffi/load.ts builds from
# source with the same file.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
caller_dir="$PWD"
cd "$SHM_CACHE_ROOT/zig"

zig="${SHM_CACHE_ZIG:-$SHM_CACHE_ROOT/.tools/zig/ziglang/zig}"
lib_file=libshm_cache.so
if [[ "$(uname -s)" == Darwin ]]; then
  lib_file=libshm_cache.dylib
fi
dev_lib="zig-out/lib/$lib_file"
test_lib="zig-out/test/$lib_file"
dev_args=(-O ReleaseFast)

sha256_stdin() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum | cut -d ' ' -f 1
  else
    shasum -a 256 | cut -d ' ' -f 1
  fi
}

# Everything the library depends on: the Zig version, the arguments and every
# source file (names and contents, in a fixed order).
build_key() {
  {
    "$zig" version
    printf '%s\n' "$@"
    cat shm_cache.rsp
    find src -name '*.zig' -type f | LC_ALL=C sort | while read -r f; do
      printf '%s\n' "$f"
      cat "$f"
    done
  } | sha256_stdin
}

cmd_build() {
  local stamp="$dev_lib.stamp" key
  key="$(build_key "${dev_args[@]}")"
  if [[ -f "$dev_lib" && -f "$test_lib" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    shm_cache_log "zig/$dev_lib and zig/$test_lib are up to date"
    return 0
  fi
  local started=$SECONDS
  shm_cache_log "zig build-lib @shm_cache.rsp ${dev_args[*]} (and the test build)"
  mkdir -p zig-out/lib zig-out/test
  rm -f "$stamp"
  # The two builds share nothing but the Zig cache; run them side by side.
  "$zig" build-lib -dynamic -lc --name shm_cache src/test_exports.zig "${dev_args[@]}" \
    -femit-bin="$test_lib" &
  local test_pid=$!
  "$zig" build-lib @shm_cache.rsp "${dev_args[@]}" -femit-bin="$dev_lib"
  wait "$test_pid"
  printf '%s\n' "$key" >"$stamp"
  shm_cache_log "zig/$dev_lib and zig/$test_lib ($((SECONDS - started)) s)"
}

cmd_test() {
  if [[ ! -f "$dev_lib" ]]; then
    shm_cache_log "zig/$dev_lib is missing; run scripts/setup.sh first"
    return 1
  fi
  # load_test.zig imports the library's path as the module "paths", which
  # build.zig makes with addOptions; here a one-line file stands in for it.
  local tmp
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/shm-cache-native.XXXXXX")"
  trap 'rm -rf "$tmp"' RETURN
  printf 'pub const library: []const u8 = "%s";\n' "$PWD/$dev_lib" >"$tmp/paths.zig"
  "$zig" test -lc src/exports.zig
  "$zig" test -lc --dep paths -Mroot=src/load_test.zig -Mpaths="$tmp/paths.zig"
}

cmd_release() {
  if (($# != 2)); then
    echo "usage: native.sh release TARGET OUT" >&2
    return 2
  fi
  local target=$1 out=$2
  [[ "$out" == /* ]] || out="$caller_dir/$out"
  local args=(-O ReleaseFast -fstrip -target "$target")
  local stamp="$out.stamp" key
  key="$(build_key "${args[@]}")"
  if [[ -f "$out" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    shm_cache_log "$target: $out is up to date"
    return 0
  fi
  local started=$SECONDS
  mkdir -p "$(dirname "$out")"
  rm -f "$stamp"
  "$zig" build-lib @shm_cache.rsp "${args[@]}" -femit-bin="$out"
  printf '%s\n' "$key" >"$stamp"
  shm_cache_log "$target: $out ($((SECONDS - started)) s)"
}

case "${1:-}" in
  build) cmd_build ;;
  test) cmd_test ;;
  release)
    shift
    cmd_release "$@"
    ;;
  *)
    echo "usage: native.sh build | test | release TARGET OUT" >&2
    exit 2
    ;;
esac
