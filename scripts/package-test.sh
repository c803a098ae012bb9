#!/usr/bin/env bash
# The packaging proof of the test command (scripts/test.sh runs it as a
# suite): builds every package into dist/ (scripts/package.sh), lints the
# JSR package (deno doc --lint, deno publish --dry-run with no warning),
# checks every built library from its headers (tests/package/binaries.ts),
# then publishes the tarballs to a local verdaccio and installs them into
# fresh projects outside the repository (tests/package/install.ts).
#
# verdaccio comes from scripts/registry/package-lock.json, installed here
# (and again only when that lockfile changes).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SHM_CACHE_ROOT"

bash scripts/package.sh >/dev/null

# JSR: the documentation of every entry point is complete, and a dry-run
# publish passes with no warning (slow types, unanalyzable imports).
mapfile -t entries < <(deno eval 'console.log(Object.values(JSON.parse(Deno.readTextFileSync("deno.json")).exports).join("\n"))')
deno doc --lint "${entries[@]}"
publish_log="$(deno publish --dry-run --allow-dirty 2>&1)" || {
  printf '%s\n' "$publish_log" >&2
  exit 1
}
if grep -q 'warning' <<<"$publish_log"; then
  printf '%s\n' "$publish_log" >&2
  shm_cache_log "deno publish --dry-run warns"
  exit 1
fi

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
