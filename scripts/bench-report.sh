#!/usr/bin/env bash
# Runs the whole benchmark suite and regenerates bench/README.md and its
# charts from the results (bench/results/*.json). About 10 minutes on a
# 2-core machine.
#
#   bash scripts/bench-report.sh                 # everything
#   bash scripts/bench-report.sh peers-bun report   # only these steps
#
# Steps: peers-bun, peers-deno, multiprocess-bun, multiprocess-deno,
# eviction, native, report. Each is bounded by SHM_CACHE_BENCH_STEP_TIMEOUT_S
# seconds (default 600); a failing step does not stop the others, so the
# report (the last step) is written from whatever results exist, and the
# script exits non-zero if any step failed.
#
# Installs what the suite needs and the lockfile does not pin: Debian's
# redis-server (the Redis contender) and valgrind (instruction counts), with
# apt-get when they are missing and we are root. npm packages (mitata, lmdb,
# lru-cache, redis) come from package-lock.json through scripts/setup.sh.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

bash "$SHM_CACHE_ROOT/scripts/setup.sh"
cd "$SHM_CACHE_ROOT"

step_timeout_s="${SHM_CACHE_BENCH_STEP_TIMEOUT_S:-600}"
all_steps=(peers-bun peers-deno multiprocess-bun multiprocess-deno eviction native report)
if (($# > 0)); then
  steps=("$@")
else
  steps=("${all_steps[@]}")
fi

# Installs Debian packages whose command is missing; says so when it cannot.
ensure_debian() {
  local missing=()
  local pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    shm_cache_log "installing ${missing[*]} with apt-get"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/shm-cache-apt.log 2>&1; then
      shm_cache_log "apt-get failed (see /tmp/shm-cache-apt.log); the steps that need ${missing[*]} will fail"
    fi
  else
    shm_cache_log "${missing[*]} missing and cannot install (not root or no apt-get); the steps that need them will fail"
  fi
}

needs_redis=0
needs_valgrind=0
for step in "${steps[@]}"; do
  case "$step" in
    peers-* | multiprocess-*) needs_redis=1 ;;
    native) needs_valgrind=1 ;;
    eviction | report) ;;
    *)
      echo "unknown step '$step'; steps: ${all_steps[*]}" >&2
      exit 2
      ;;
  esac
done
pairs=()
((needs_redis)) && pairs+=(redis-server:redis-server)
((needs_valgrind)) && pairs+=(valgrind:valgrind)
((${#pairs[@]} > 0)) && ensure_debian "${pairs[@]}"

mkdir -p bench/results
failed=()
started=$SECONDS
for step in "${steps[@]}"; do
  case "$step" in
    peers-bun) cmd=(bun run bench/peers_bench.ts) ;;
    peers-deno) cmd=(deno run -A bench/peers_bench.ts) ;;
    multiprocess-bun) cmd=(bun run bench/multiprocess.ts --runtime bun) ;;
    multiprocess-deno) cmd=(deno run -A bench/multiprocess.ts --runtime deno) ;;
    eviction) cmd=(bun run bench/eviction.ts) ;;
    native) cmd=(bun run bench/native_hit.ts) ;;
    report) cmd=(bun run bench/report.ts) ;;
  esac
  printf '\n==================== %s: %s ====================\n\n' "$step" "${cmd[*]}"
  step_started=$SECONDS
  status=0
  timeout --kill-after=30 "$step_timeout_s" "${cmd[@]}" || status=$?
  if ((status == 0)); then
    printf '\n%s: ok (%d s)\n' "$step" "$((SECONDS - step_started))"
  else
    printf '\n%s: FAILED (exit %d, %d s)\n' "$step" "$status" "$((SECONDS - step_started))"
    failed+=("$step")
  fi
done

printf '\nbench-report: %d s in all\n' "$((SECONDS - started))"
if ((${#failed[@]} > 0)); then
  printf 'failed steps: %s\n' "${failed[*]}" >&2
  exit 1
fi
