#!/usr/bin/env bash
# Mutation testing by hand-picked mutants: does the test suite notice when a
# line that matters is wrong?
#
#   bash scripts/mutants.sh              every mutant
#   bash scripts/mutants.sh NAME...      only these (names as listed below)
#   bash scripts/mutants.sh --list       the mutants, one a line
#   bash scripts/mutants.sh --rev REV [NAME...]
#                                        mutate commit REV instead of the working
#                                        tree (say, the commit before new tests,
#                                        to see what they add)
#
# For each mutant: copy the tracked tree to a temporary directory (node_modules
# and .tools are linked, not copied), replace one exact piece of text in one
# file (the text must occur exactly once, or the mutant is reported STALE: the
# code moved on and the mutant needs updating), rebuild the library, run the
# tests that concern that code, and print CAUGHT (some test failed) or
# SURVIVED (every test passed). A mutant that does not build is reported
# BROKEN. The working tree is never touched. The last line is
# "N caught, M survived, K stale or broken". Each mutant's build and test
# output is kept in $SHM_CACHE_MUTANT_LOGS (default /tmp/shm-cache-mutant-logs),
# one NAME.log each: the failing assertion says why a mutant was caught.
# Exits 0; this is a report, not a
# gate, and it does not run in CI (a full run takes about 20 minutes).
#
# Each test command is bounded by SHM_CACHE_MUTANT_TIMEOUT_S seconds (default
# 900): a mutant that makes a test hang is reported "CAUGHT (timed out ...)",
# apart from a failing assertion, since on a loaded machine a slow build can
# look like a hang. Run it on a quiet machine.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SHM_CACHE_ROOT"

timeout_s="${SHM_CACHE_MUTANT_TIMEOUT_S:-900}"

# The mutants. One record per mutant, fields separated by lines:
#   name
#   file
#   tests: space-separated; "zig" is `zig build test`, "deno:FILE" and
#          "bun:FILE" run one test file under one runtime
#   the text to find (one line; \n stands for a newline)
#   the text to put instead
# Records are separated by a line holding only "--".
mutants() {
  cat <<'EOF'
seqlock-no-recheck
zig/src/seqlock.zig
zig deno:tests/torn_read_test.ts bun:tests/torn_read_test.ts
    return s1 == s2 and s1 & 1 == 0;
    return s2 == s2 and s1 & 1 == 0;
--
lock-no-generation-bump
zig/src/lock.zig
zig deno:tests/multiprocess_test.ts bun:tests/multiprocess_test.ts
            const next = word_make(word_generation(word) +% 1, h.live_slot, h.pid);
            const next = word_make(word_generation(word), h.live_slot, h.pid);
--
codec-bytes-view
lib/codec.ts
deno:tests/cache_test.ts bun:tests/cache_test.ts
        return this.#plain.slice(1, length);
        return this.#plain.subarray(1, length);
--
single-flight-no-reread
lib/_single_flight.ts
deno:tests/memoize_test.ts bun:tests/memoize_test.ts deno:tests/memoize_shared_test.ts bun:tests/memoize_shared_test.ts
    const value = this.#read(wait.key);\n    if (value === MISSING) return CLAIMED;
    const value: unknown = MISSING;\n    if (value === MISSING) return CLAIMED;
--
ttl-doubled
zig/src/write.zig
deno:tests/cache_test.ts bun:tests/cache_test.ts deno:tests/memoize_shared_test.ts bun:tests/memoize_shared_test.ts
    const ns_f = @min(ms * std.time.ns_per_ms, 1.0e18);
    const ns_f = @min(2 * ms * std.time.ns_per_ms, 1.0e18);
--
sieve-keeps-visited-bits
zig/src/sieve.zig
zig
        @atomicStore(u8, &s.visited, 0, .monotonic);\n        hand = try check(h, s.prev);
        hand = try check(h, s.prev);
--
seqlock-writer-stays-even
zig/src/seqlock.zig
zig deno:tests/torn_read_test.ts bun:tests/torn_read_test.ts
    @atomicStore(u64, &header.seq, s +% 1, .monotonic);\n    fence_release();
    @atomicStore(u64, &header.seq, s +% 2, .monotonic);\n    fence_release();
--
lock-release-keeps-owner
zig/src/lock.zig
zig deno:tests/multiprocess_test.ts
    const free = word_make(word_generation(h.lock_word), 0, 0);
    const free = h.lock_word;
--
lock-steals-from-the-living
zig/src/lock.zig
zig deno:tests/multiprocess_test.ts bun:tests/multiprocess_test.ts
            (backoff.probing() and !liveness.is_alive(h.fd, owner)))
            (backoff.probing()))
--
liveness-everyone-dead
zig/src/liveness.zig
zig deno:tests/robust_test.ts
    return fl.type != c.F.UNLCK;\n}\n\n/// macOS
    return false;\n}\n\n/// macOS
--
recovery-skips-rebuild
zig/src/write.zig
zig deno:tests/robust_test.ts bun:tests/robust_test.ts
        rebuild(h);\n        seqlock.write_end(header);
        seqlock.write_end(header);
--
reader-never-recovers
zig/src/read.zig
zig deno:tests/multiprocess_test.ts bun:tests/multiprocess_test.ts
    if (!dead) return;\n    if (acquire(h, deadline_ns)) |_| {
    if (dead or !dead) return;\n    if (acquire(h, deadline_ns)) |_| {
--
rebuild-trusts-torn-slots
zig/src/entry.zig
zig deno:tests/robust_test.ts
    return slot_checksum(h, index, region.slot_occupied) == s.checksum;
    return slot_checksum(h, index, region.slot_occupied) != 0;
--
rebuild-oldest-first
zig/src/rebuild.zig
zig deno:tests/robust_test.ts
    return a.stamp > b.stamp;
    return a.stamp < b.stamp;
--
free-list-leaks-slots
zig/src/write.zig
zig deno:tests/cache_test.ts
    if (push_free) {\n        s.next = header.free_head;
    if (push_free and index == region.nil) {\n        s.next = header.free_head;
--
free-list-head-not-advanced
zig/src/write.zig
zig deno:tests/cache_test.ts
        header.free_head = next;\n        return index;
        header.free_head = if (next == region.nil) next else index;\n        return index;
--
table-shift-breaks-runs
zig/src/table.zig
zig
        if (!home_in_between) {
        if (home_in_between) {
--
ttl-default-ignored
zig/src/write.zig
deno:tests/cache_test.ts bun:tests/cache_test.ts
    const ms: f64 = if (ttl_ms < 0) @floatFromInt(h.geo.ttl_ms) else ttl_ms;
    const ms: f64 = if (ttl_ms < 0) 0 * @as(f64, @floatFromInt(h.geo.ttl_ms)) else ttl_ms;
--
reader-ignores-expiry
zig/src/read.zig
zig deno:tests/cache_test.ts bun:tests/cache_test.ts
                if (expires != 0 and clock.now() >= expires) return .expired;
                if (expires != 0 and clock.now() >= expires +| std.time.ns_per_s) return .expired;
--
memory-cache-ttl-doubled
lib/memory_cache.ts
deno:tests/memory_cache_test.ts bun:tests/memory_cache_test.ts
    const expiresAt = ttlMs === NEVER ? NEVER : this.#now() + ttlMs;
    const expiresAt = ttlMs === NEVER ? NEVER : this.#now() + 2 * ttlMs;
--
codec-json-latin1
lib/codec.ts
deno:tests/cache_test.ts bun:tests/cache_test.ts
        return JSON.parse(buf.toString("utf8", 1, length));
        return JSON.parse(buf.toString("latin1", 1, length));
--
single-flight-waiter-no-reread
lib/_single_flight.ts
deno:tests/memoize_test.ts bun:tests/memoize_test.ts deno:tests/memoize_shared_test.ts
      value = this.#read(wait.key);\n      return value === MISSING ? ALONE : joined(wait, value);
      return ALONE;
--
single-flight-release-deletes-any-claim
lib/_single_flight.ts
deno:tests/memoize_test.ts bun:tests/memoize_test.ts deno:tests/memoize_shared_test.ts
      if (this.#cache.get(claimKey) === this.#claimValue) this.#cache.delete(claimKey);
      this.#cache.delete(claimKey);
EOF
}

# Prints field $2 (0-based) of the record named $1.
field() {
  mutants | awk -v want="$1" -v n="$2" '
    BEGIN { RS = "\n--\n" }
    { split($0, f, "\n"); if (f[1] == want) { print f[n + 1]; exit } }'
}

names() {
  mutants | awk 'BEGIN { RS = "\n--\n" } { split($0, f, "\n"); print f[1] }'
}

if [[ "${1:-}" == "--list" ]]; then
  names
  exit 0
fi

rev=""
if [[ "${1:-}" == "--rev" ]]; then
  rev="$(git rev-parse --verify "${2:?--rev needs a commit}^{commit}")"
  shift 2
fi

selected=("$@")
if ((${#selected[@]} == 0)); then
  mapfile -t selected < <(names)
fi
for name in "${selected[@]}"; do
  if [[ -z "$(field "$name" 1)" ]]; then
    echo "mutants.sh: no mutant named '$name' (see --list)" >&2
    exit 2
  fi
done

bash scripts/setup.sh >/dev/null

logs="${SHM_CACHE_MUTANT_LOGS:-/tmp/shm-cache-mutant-logs}"
mkdir -p "$logs"
work="$(mktemp -d "${TMPDIR:-/tmp}/shm-cache-mutants.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# A fresh copy of the tracked tree (plus untracked, unignored files: new tests
# under work count), or of commit $rev, with the heavy installed folders
# linked in.
copy_tree() {
  local dest=$1
  rm -rf "$dest"
  mkdir -p "$dest"
  if [[ -n "$rev" ]]; then
    git archive "$rev" | tar -xf - -C "$dest"
  else
    git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' path; do
      [[ -e "$path" ]] && printf '%s\0' "$path"
    done | tar --null -T - -cf - | tar -xf - -C "$dest"
  fi
  ln -s "$SHM_CACHE_ROOT/node_modules" "$dest/node_modules"
  ln -s "$SHM_CACHE_ROOT/.tools" "$dest/.tools"
}

# Replaces the one occurrence of $2 in file $1 by $3 (\n = newline).
# Exit 3 when the text does not occur exactly once.
apply() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2].replace("\\n", "\n"), sys.argv[3].replace("\\n", "\n")
text = open(path, encoding="utf-8").read()
if text.count(old) != 1:
    sys.exit(3)
open(path, "w", encoding="utf-8").write(text.replace(old, new))
PY
}

# Runs one test spec in tree $1; returns the test's exit status.
run_test() {
  local tree=$1 spec=$2
  local runtime=${spec%%:*} file=${spec#*:}
  if [[ "$runtime" != zig && ! -e "$tree/$file" ]]; then
    echo "[mutants] $file does not exist here: not run" >&2
    return 0
  fi
  # The test build of the mutated library (zig build makes it): the crash
  # tests need its fault points.
  local lib_file=libshm_cache.so
  [[ "$(uname -s)" == Darwin ]] && lib_file=libshm_cache.dylib
  export SHM_CACHE_LIB="$tree/zig/zig-out/test/$lib_file"
  case "$runtime" in
    zig) (cd "$tree/zig" && timeout --kill-after=10 "$timeout_s" zig build test) ;;
    deno) (cd "$tree" && timeout --kill-after=10 "$timeout_s" deno test -A "$file") ;;
    bun) (cd "$tree" && timeout --kill-after=10 "$timeout_s" bun test --timeout 60000 "$file") ;;
    *)
      echo "unknown test spec $spec" >&2
      return 2
      ;;
  esac
}

caught=0
survived=0
other=0
results=()
for name in "${selected[@]}"; do
  file="$(field "$name" 1)"
  read -r -a tests <<<"$(field "$name" 2)"
  find="$(field "$name" 3)"
  replace="$(field "$name" 4)"
  tree="$work/tree"
  copy_tree "$tree"
  log="$logs/$name.log"
  : >"$log"
  status=0
  apply "$tree/$file" "$find" "$replace" || status=$?
  if ((status != 0)); then
    verdict="STALE (the text to mutate is not in $file exactly once)"
    other=$((other + 1))
  elif ! (cd "$tree/zig" && zig build -Doptimize=ReleaseFast) >"$log" 2>&1; then
    verdict="BROKEN (does not build; see $log)"
    other=$((other + 1))
  else
    verdict="SURVIVED"
    for spec in "${tests[@]}"; do
      printf '[mutants] %s: %s\n' "$name" "$spec" >&2
      test_status=0
      run_test "$tree" "$spec" >>"$log" 2>&1 || test_status=$?
      if ((test_status == 124 || test_status == 137)); then
        verdict="CAUGHT (timed out after $timeout_s s) by $spec"
        break
      elif ((test_status != 0)); then
        verdict="CAUGHT by $spec"
        break
      fi
    done
    if [[ "$verdict" == SURVIVED ]]; then
      survived=$((survived + 1))
    else
      caught=$((caught + 1))
    fi
  fi
  line="$(printf '%-42s %s' "$name" "$verdict")"
  results+=("$line")
  printf '%s\n' "$line"
done

printf '\n'
printf '%s\n' "${results[@]}"
printf '\nlogs: %s/NAME.log\n' "$logs"
printf '\n%d caught, %d survived, %d stale or broken\n' "$caught" "$survived" "$other"
