#!/usr/bin/env bash
# Runs every test suite: Zig's unit tests, the TypeScript tests under Deno
# and under Bun, then the packaging proof (every platform built and checked,
# the packages installed from a local registry). All run even when one
# fails. The last line printed is "N passed, M failed", counting suites; CI
# reads it. Exits non-zero if any suite failed.
#
# Each suite is bounded by SHM_CACHE_SUITE_TIMEOUT_S seconds (default 900), so
# that a hang fails the run instead of wedging CI.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SHM_CACHE_ROOT"

suite_timeout_s="${SHM_CACHE_SUITE_TIMEOUT_S:-900}"
suites_total=4
passed=0
failed=0

banner() {
  printf '\n==================== %s ====================\n\n' "$*"
}

# GNU timeout is `gtimeout` where coreutils comes from Homebrew; without
# either, suites run unbounded. Unattended (CI), timeout runs the suite in a
# process group of its own and signals all of it, so worker processes that a
# test spawned die with it. At a terminal it must stay in the foreground group
# instead, or Ctrl-C would never reach the suite.
bounded() {
  local timeout_cmd=""
  if command -v timeout >/dev/null 2>&1; then
    timeout_cmd=timeout
  elif command -v gtimeout >/dev/null 2>&1; then
    timeout_cmd=gtimeout
  else
    "$@"
    return
  fi
  if [[ -t 0 ]]; then
    "$timeout_cmd" --foreground --kill-after=30 "$suite_timeout_s" "$@"
  else
    "$timeout_cmd" --kill-after=30 "$suite_timeout_s" "$@"
  fi
}

# Runs one suite, `suite NAME LABEL COMMAND...`, and counts it; never stops
# the script.
suite() {
  local name=$1 label=$2
  shift 2
  banner "$name: $label"
  local started=$SECONDS status=0
  bounded "$@" || status=$?
  if ((status == 0)); then
    passed=$((passed + 1))
    printf '\n%s: ok (%d s)\n' "$name" "$((SECONDS - started))"
  else
    failed=$((failed + 1))
    if ((status == 124)); then
      printf '\n%s: FAILED, timed out after %d s\n' "$name" "$suite_timeout_s"
    elif ((status == 137)); then
      printf '\n%s: FAILED, killed (SIGKILL: a timeout that SIGTERM did not end, or out of memory)\n' "$name"
    else
      printf '\n%s: FAILED (exit %d, %d s)\n' "$name" "$status" "$((SECONDS - started))"
    fi
  fi
}

banner "setup"
if ! bash scripts/setup.sh; then
  printf '\nsetup failed: no suite ran\n'
  printf '0 passed, %d failed\n' "$suites_total"
  exit 1
fi

# The suites load the test build of the library (native.sh build makes it):
# the same library plus the fault points the crash tests park writers at.
# Children inherit the variable, so they load the same file.
lib_file=libshm_cache.so
[[ "$(uname -s)" == Darwin ]] && lib_file=libshm_cache.dylib
export SHM_CACHE_LIB="$SHM_CACHE_ROOT/zig/zig-out/test/$lib_file"

suite zig "scripts/native.sh test (zig test, as zig build test)" bash scripts/native.sh test
# `deno test` type-checks tests/ and lib/; the benchmarks and scripts are
# only run by hand, so they are type-checked here (an ABI change must not
# leave them calling the library wrongly).
suite deno "deno check bench/ scripts/ && deno test -A tests/" \
  bash -c 'deno check bench/ scripts/*.ts && exec deno test -A tests/'
# Bun 1.4.4 ignores the timeout in bunfig.toml, so the per-test default is
# given here too.
suite bun "bun test tests/" bun test --timeout 60000 tests/
suite package "scripts/package-test.sh (build, check, publish locally, install)" \
  bash scripts/package-test.sh

printf '\n%d passed, %d failed\n' "$passed" "$failed"
if ((failed > 0)); then
  exit 1
fi
