#!/usr/bin/env bash
# Installs the pinned toolchain into the repository and builds the native
# library. Safe to run from any directory and as often as you like: a step
# whose result is already in place is skipped, so a second run takes about a
# second. A cold first run takes about a minute, mostly downloads; the native
# build is about 10 s of it (scripts/native.sh).
#
#   .tools/zig/      Zig, from PyPI, at the version in scripts/requirements-zig.txt
#   node_modules/    Deno, Bun, mitata and @types/node, from package-lock.json
#   zig/zig-out/lib/ libshm_cache.so (Linux) or libshm_cache.dylib (macOS)
#   redis-server     Debian's package, for the TieredCache tests (installed
#                    with apt-get when missing and run as root)
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SHM_CACHE_ROOT"

mkdir -p .tools
# Two setups at once (say, a test run and a demo) would both install into the
# same folders; the second waits for the first. flock is missing on macOS,
# where the race is left to the user.
if command -v flock >/dev/null 2>&1; then
  exec 9>.tools/setup.lock
  flock 9
fi

# Runs a command with its output kept in a file, shown only if it fails.
run_quiet() {
  local log
  log="$(mktemp "${TMPDIR:-/tmp}/shm-cache-setup.XXXXXX")"
  if "$@" >"$log" 2>&1; then
    rm -f "$log"
  else
    local status=$?
    shm_cache_log "failed (exit $status): $*"
    cat "$log" >&2
    rm -f "$log"
    return "$status"
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  else
    shasum -a 256 "$1" | cut -d ' ' -f 1
  fi
}

install_zig() {
  local dir=.tools/zig
  local zig="$dir/ziglang/zig"
  local found=""
  if [[ -x "$zig" ]]; then
    found="$("$zig" version 2>/dev/null || true)"
  fi
  if [[ "$found" == "$SHM_CACHE_ZIG_VERSION" ]]; then
    shm_cache_log "zig $SHM_CACHE_ZIG_VERSION: present"
    return 0
  fi
  local started=$SECONDS
  shm_cache_log "zig $SHM_CACHE_ZIG_VERSION: installing into $dir${found:+ (replacing $found)}"
  # Install beside the old folder and swap, so that an interrupted install
  # never leaves a half-filled .tools/zig behind.
  rm -rf "$dir.new"
  run_quiet python3 -m pip install --quiet --disable-pip-version-check --no-input \
    --root-user-action=ignore --only-binary=:all: \
    --target "$dir.new" -r scripts/requirements-zig.txt
  rm -rf "$dir"
  mv "$dir.new" "$dir"
  found="$("$zig" version)"
  if [[ "$found" != "$SHM_CACHE_ZIG_VERSION" ]]; then
    shm_cache_log "zig: installed $zig reports version '$found', expected $SHM_CACHE_ZIG_VERSION"
    return 1
  fi
  shm_cache_log "zig $SHM_CACHE_ZIG_VERSION: installed ($((SECONDS - started)) s)"
}

# The stamp holds the hash of the lockfile that node_modules was installed
# from; npm ci runs again when node_modules is missing or the lockfile moved.
install_node_modules() {
  local stamp=node_modules/.shm-cache-lock.sha256
  local want
  want="$(sha256_of package-lock.json)"
  if [[ -d node_modules && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    shm_cache_log "node_modules: up to date with package-lock.json"
    return 0
  fi
  local started=$SECONDS
  shm_cache_log "node_modules: npm ci"
  run_quiet npm ci --no-audit --no-fund
  shm_cache_log "node_modules: deno $(deno --version | head -n 1 | cut -d ' ' -f 2)," \
    "bun $(bun --version) ($((SECONDS - started)) s)"
  printf '%s\n' "$want" >"$stamp"
}

# scripts/native.sh builds with `zig build-lib` directly (no build runner to
# compile on a cold machine) and skips the build when nothing changed.
build_native() {
  bash scripts/native.sh build
}

# The TieredCache tests start their own redis-server (tests/_redis.ts). As
# root on Debian or Ubuntu it is installed when missing; elsewhere the tests
# say how to get it.
install_redis() {
  if command -v redis-server >/dev/null 2>&1 || [[ -x /usr/bin/redis-server ]]; then
    shm_cache_log "redis-server: present"
    return 0
  fi
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    shm_cache_log "redis-server: missing (install it for the TieredCache tests, e.g. apt-get install redis-server)"
    return 0
  fi
  local started=$SECONDS
  shm_cache_log "redis-server: apt-get install redis-server"
  run_quiet apt-get update
  run_quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server
  shm_cache_log "redis-server: $(redis-server --version | cut -d ' ' -f 3) ($((SECONDS - started)) s)"
}

install_zig
install_node_modules
build_native
install_redis
