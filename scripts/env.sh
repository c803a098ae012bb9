# shellcheck shell=bash
# Sourced by the other scripts in scripts/, never run on its own.
#
# Sets SHM_CACHE_ROOT to the repository root, reads the pinned Zig version from
# scripts/requirements-zig.txt (the one place it is pinned) into
# SHM_CACHE_ZIG_VERSION, and puts the repository's own Zig and the npm-installed
# Deno and Bun first on PATH, so that every script uses the pinned tools and not
# whatever else the machine has.

SHM_CACHE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export SHM_CACHE_ROOT

SHM_CACHE_ZIG_VERSION="$(sed -n 's/^[[:space:]]*ziglang[[:space:]]*==[[:space:]]*\([0-9][0-9A-Za-z.+-]*\).*$/\1/p' \
  "$SHM_CACHE_ROOT/scripts/requirements-zig.txt" | head -n 1)"
if [[ -z "$SHM_CACHE_ZIG_VERSION" ]]; then
  echo "env.sh: no 'ziglang==VERSION' line in scripts/requirements-zig.txt" >&2
  return 1
fi
export SHM_CACHE_ZIG_VERSION

# Drop any earlier copies of the two directories, then put them first, so that
# sourcing this file again (setup.sh from test.sh) neither grows PATH nor
# changes the order.
shm_cache_path=""
IFS=':' read -r -a shm_cache_dirs <<< "$PATH"
for shm_cache_dir in "${shm_cache_dirs[@]}"; do
  case "$shm_cache_dir" in
    "$SHM_CACHE_ROOT/.tools/zig/ziglang" | "$SHM_CACHE_ROOT/node_modules/.bin") ;;
    *) shm_cache_path="${shm_cache_path:+$shm_cache_path:}$shm_cache_dir" ;;
  esac
done
PATH="$SHM_CACHE_ROOT/.tools/zig/ziglang:$SHM_CACHE_ROOT/node_modules/.bin${shm_cache_path:+:$shm_cache_path}"
unset shm_cache_path shm_cache_dirs shm_cache_dir
export PATH

# Deno would otherwise look for a newer release on every run.
export DENO_NO_UPDATE_CHECK=1

# Prints one progress line to stderr, prefixed with the calling script's name.
shm_cache_log() {
  printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2
}
