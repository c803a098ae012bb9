#!/usr/bin/env bash
# Builds the native library for every platform we ship (stripped release
# builds with the pinned Zig; see lib/ffi/platform.ts) and writes every npm
# package tarball into dist/: one per platform and the root package
# `shm-cache`. Prints the tarballs' paths, one a line, on stdout.
#
# A platform whose sources and Zig have not changed since its last build is
# not built again (scripts/native.sh keeps a stamp beside each library), so a
# second run takes seconds.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SHM_CACHE_ROOT"

bash scripts/setup.sh >&2
deno run --allow-read --allow-write --allow-run --allow-env scripts/package.ts
