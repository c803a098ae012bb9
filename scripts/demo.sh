#!/usr/bin/env bash
# Sets up, then runs the demo (scripts/demo.ts) under Deno. Arguments go to the
# demo unchanged; relative paths in them are relative to where you run this.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

bash "$SHM_CACHE_ROOT/scripts/setup.sh"
exec deno run -A --config "$SHM_CACHE_ROOT/deno.json" "$SHM_CACHE_ROOT/scripts/demo.ts" "$@"
