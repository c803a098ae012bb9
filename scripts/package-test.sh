#!/usr/bin/env bash
# The packaging proof of the test command (scripts/test.sh runs it as a
# suite): builds every package into dist/ (scripts/package.sh), checks every
# built library from its headers (tests/package/binaries.ts), then publishes
# the tarballs to a local verdaccio and installs them into fresh projects
# outside the repository (tests/package/install.ts).
#
# verdaccio comes from scripts/registry/package-lock.json, installed here
# (and again only when that lockfile changes).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SHM_CACHE_ROOT"

bash scripts/package.sh >/dev/null

registry=scripts/registry
stamp="$registry/node_modules/.shm-cache-lock.sha256"
want="$(sha256sum "$registry/package-lock.json" 2>/dev/null || shasum -a 256 "$registry/package-lock.json")"
want="${want%% *}"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  shm_cache_log "verdaccio: npm ci in $registry"
  (cd "$registry" && npm ci --no-audit --no-fund --silent)
  printf '%s\n' "$want" >"$stamp"
fi

exec deno test --allow-all tests/package/binaries.ts tests/package/install.ts
