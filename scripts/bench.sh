#!/usr/bin/env bash
# Sets up, then runs each bench/*_bench.ts under Bun and then under Deno.
# Arguments go to every benchmark unchanged. A failing benchmark does not stop
# the others; the script exits non-zero if any failed.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

bash "$SHM_CACHE_ROOT/scripts/setup.sh"
cd "$SHM_CACHE_ROOT"

shopt -s nullglob
benches=(bench/*_bench.ts)
if ((${#benches[@]} == 0)); then
  shm_cache_log "no bench/*_bench.ts files: nothing to run"
  exit 0
fi

failed=()
for file in "${benches[@]}"; do
  for runtime in bun deno; do
    printf '\n==================== %s under %s ====================\n\n' "$file" "$runtime"
    if [[ $runtime == bun ]]; then
      cmd=(bun run "$file" "$@")
    else
      cmd=(deno run -A "$file" "$@")
    fi
    if ! "${cmd[@]}"; then
      failed+=("$runtime $file")
    fi
  done
done

if ((${#failed[@]} > 0)); then
  printf '\nfailed:\n' >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
