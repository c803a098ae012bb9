/**
 * Eviction quality: the hit rate of SIEVE (shm-cache's policy) against LRU,
 * with FIFO as a baseline, on five synthetic traces and six cache sizes.
 * Pure-TS simulators of each policy replay the same traces with demand
 * fill (a miss inserts the key). Then the real `SharedCache` replays one
 * trace the same way, and its hit count must equal the SIEVE simulator's:
 * the simulator is the policy the library implements, step for step
 * (zig/src/sieve.zig). The LRU simulator is checked the same way against
 * the `lru-cache` package.
 *
 * ```sh
 * bun run bench/eviction.ts          # writes bench/results/eviction.json
 * ```
 *
 * Options: `--requests N` (1,000,000), `--out FILE`.
 *
 * Traces (seeded, over a universe of 100,000 keys):
 * - zipf: Zipf s = 0.99 requests.
 * - scan: the same Zipf requests, but 30% of the time a scan runs: in each
 *   window of 20,000 requests the first 6,000 are fresh keys read once
 *   in sequence (a batch job or crawler sweeping the key space).
 * - one-hit-wonders: 40% of requests are keys that never come back.
 * - shifting: Zipf whose popular keys change every 100,000 requests (the
 *   ranking moves to other keys at once): recency wins, LRU's home ground.
 * - loop: a loop over 2,700 keys, a little smaller than the 3,000-entry
 *   cache, with 5% one-off keys mixed in: LRU keeps the whole loop there
 *   (and loses it entirely in a cache smaller than the loop).
 *
 * No package on npm or PyPI that we found ships a real cache trace
 * (libcachesim's wheel has none; the public traces are downloads from their
 * authors' sites), so the traces are synthetic.
 *
 * @module
 */

import { rmSync } from "node:fs";
import process from "node:process";
import { SharedCache } from "../mod.ts";
import {
  freshDir,
  numberArg,
  packageVersion,
  parseArgs,
  resultHeader,
  rng,
  thisCommand,
  writeResult,
  zipf,
} from "./_common.ts";

const UNIVERSE = 100_000;
const ZIPF_S = 0.99;
const SIZES = [100, 300, 1_000, 3_000, 10_000, 30_000];
const NIL = -1;

/** A policy simulator: `access` returns true on a hit and inserts on a miss. */
interface Policy {
  access(key: number): boolean;
}

/**
 * SIEVE exactly as zig/src/sieve.zig does it: new entries at the head; a
 * hit sets `visited`; to evict, the hand walks from where it stopped (the
 * tail when none) toward the head, clearing visited bits, and takes the
 * first unvisited entry, stopping just past it; past the head it wraps to
 * the tail. The victim leaves before the new entry is linked.
 */
class Sieve implements Policy {
  readonly #index = new Map<number, number>();
  readonly #keys: Float64Array;
  readonly #prev: Int32Array; // toward the head (newer)
  readonly #next: Int32Array; // toward the tail (older)
  readonly #visited: Uint8Array;
  readonly #capacity: number;
  #head = NIL;
  #tail = NIL;
  #hand = NIL;
  #used = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#keys = new Float64Array(capacity);
    this.#prev = new Int32Array(capacity);
    this.#next = new Int32Array(capacity);
    this.#visited = new Uint8Array(capacity);
  }

  access(key: number): boolean {
    const slot = this.#index.get(key);
    if (slot !== undefined) {
      this.#visited[slot] = 1;
      return true;
    }
    const index = this.#used < this.#capacity ? this.#used++ : this.#evict();
    this.#keys[index] = key;
    this.#visited[index] = 0;
    this.#prev[index] = NIL;
    this.#next[index] = this.#head;
    if (this.#head === NIL) this.#tail = index;
    else this.#prev[this.#head] = index;
    this.#head = index;
    this.#index.set(key, index);
    return false;
  }

  #evict(): number {
    let hand = this.#hand;
    // Bound: one pass clears every bit, so a victim turns up within 2n+1 steps.
    for (let step = 0; step <= 2 * this.#capacity; step++) {
      if (hand === NIL) hand = this.#tail;
      if (this.#visited[hand] === 0) {
        this.#hand = this.#prev[hand];
        this.#unlink(hand);
        this.#index.delete(this.#keys[hand]);
        return hand;
      }
      this.#visited[hand] = 0;
      hand = this.#prev[hand];
    }
    throw new Error("SIEVE simulator: no victim within the bound");
  }

  #unlink(index: number): void {
    const prev = this.#prev[index], next = this.#next[index];
    if (prev === NIL) this.#head = next;
    else this.#next[prev] = next;
    if (next === NIL) this.#tail = prev;
    else this.#prev[next] = prev;
  }
}

/** LRU over a Map's insertion order: a hit moves the key to the end. */
class Lru implements Policy {
  readonly #map = new Map<number, true>();
  constructor(readonly capacity: number) {}
  access(key: number): boolean {
    if (this.#map.delete(key)) {
      this.#map.set(key, true);
      return true;
    }
    if (this.#map.size === this.capacity) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(key, true);
    return false;
  }
}

/** FIFO: insertion order only; hits change nothing. */
class Fifo implements Policy {
  readonly #map = new Map<number, true>();
  constructor(readonly capacity: number) {}
  access(key: number): boolean {
    if (this.#map.has(key)) return true;
    if (this.#map.size === this.capacity) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(key, true);
    return false;
  }
}

const POLICIES = { sieve: Sieve, lru: Lru, fifo: Fifo } as const;
type PolicyId = keyof typeof POLICIES;

// ---------------------------------------------------------------- traces

interface Trace {
  id: string;
  description: string;
  keys: Float64Array;
}

function zipfTrace(n: number): Trace {
  const next = zipf(UNIVERSE, ZIPF_S, rng(11));
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = next();
  return { id: "zipf", description: `Zipf s=${ZIPF_S} over ${UNIVERSE} keys`, keys };
}

function scanTrace(n: number): Trace {
  const next = zipf(UNIVERSE, ZIPF_S, rng(12));
  const keys = new Float64Array(n);
  let fresh = UNIVERSE;
  for (let i = 0; i < n; i++) keys[i] = i % 20_000 < 6_000 ? fresh++ : next();
  return {
    id: "scan",
    description:
      "Zipf, with a sequential scan of 6,000 fresh keys at the start of every 20,000 requests (30%)",
    keys,
  };
}

function oneHitTrace(n: number): Trace {
  const next = zipf(UNIVERSE, ZIPF_S, rng(13));
  const random = rng(14);
  const keys = new Float64Array(n);
  let fresh = UNIVERSE;
  for (let i = 0; i < n; i++) keys[i] = random() < 0.4 ? fresh++ : next();
  return {
    id: "one-hit-wonders",
    description: "Zipf, with 40% of requests to keys never seen again",
    keys,
  };
}

function shiftingTrace(n: number): Trace {
  const next = zipf(UNIVERSE, ZIPF_S, rng(15));
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // Each phase maps the ranks to other keys: yesterday's hot keys go cold.
    const phase = Math.floor(i / 100_000);
    keys[i] = (next() + phase * 7_919) % UNIVERSE;
  }
  return {
    id: "shifting",
    description:
      `Zipf s=${ZIPF_S} whose ranking moves to other keys every 100,000 requests (popularity that shifts)`,
    keys,
  };
}

function loopTrace(n: number): Trace {
  const random = rng(16);
  const keys = new Float64Array(n);
  let fresh = UNIVERSE;
  let position = 0;
  for (let i = 0; i < n; i++) {
    if (random() < 0.05) keys[i] = fresh++;
    else keys[i] = position++ % 2_700;
  }
  return {
    id: "loop",
    description:
      "a loop over 2,700 keys (a little smaller than the 3,000 cache), with 5% one-off keys",
    keys,
  };
}

function replay(policy: Policy, keys: Float64Array, count = keys.length): number {
  let hits = 0;
  for (let i = 0; i < count; i++) if (policy.access(keys[i])) hits++;
  return hits;
}

// ---------------------------------------------------------------- checks against the real things

/** Replays `count` requests of a trace through a real SharedCache (get, and set on a miss). */
function sharedCacheHits(
  keys: Float64Array,
  capacity: number,
  count: number,
): { hits: number; evictions: number } {
  const dir = freshDir();
  try {
    using cache = SharedCache.open("eviction", {
      capacity,
      maxKeyBytes: 16,
      maxValueBytes: 8,
      dir,
    });
    let hits = 0;
    for (let i = 0; i < count; i++) {
      const key = "k" + keys[i];
      if (cache.get(key) !== undefined) hits++;
      else cache.set(key, 1);
    }
    return { hits, evictions: cache.stats().evictions };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function lruCacheHits(keys: Float64Array, capacity: number, count: number): Promise<number> {
  const { LRUCache } = await import("lru-cache");
  const cache = new LRUCache<number, number>({ max: capacity });
  let hits = 0;
  for (let i = 0; i < count; i++) {
    if (cache.get(keys[i]) !== undefined) hits++;
    else cache.set(keys[i], 1);
  }
  return hits;
}

async function main(): Promise<void> {
  const started = Date.now();
  const args = parseArgs();
  const requests = numberArg(args, "requests", 1_000_000);
  const traces = [
    zipfTrace(requests),
    scanTrace(requests),
    oneHitTrace(requests),
    shiftingTrace(requests),
    loopTrace(requests),
  ];

  const results: { trace: string; size: number; hitRate: Record<PolicyId, number> }[] = [];
  for (const trace of traces) {
    for (const size of SIZES) {
      const hitRate = {} as Record<PolicyId, number>;
      for (const id of Object.keys(POLICIES) as PolicyId[]) {
        hitRate[id] = replay(new POLICIES[id](size), trace.keys) / trace.keys.length;
      }
      results.push({ trace: trace.id, size, hitRate });
      process.stderr.write(
        `${trace.id} size ${size}: ${
          Object.entries(hitRate).map(([k, v]) => `${k} ${(v * 100).toFixed(2)}%`).join(", ")
        }\n`,
      );
    }
  }

  // The real cache against the simulator, on a prefix of two traces.
  const checks = [];
  for (const [trace, capacity] of [[traces[0], 1_000], [traces[1], 3_000]] as const) {
    const count = Math.min(200_000, trace.keys.length);
    const simulated = replay(new Sieve(capacity), trace.keys, count);
    const real = sharedCacheHits(trace.keys, capacity, count);
    const lruSim = replay(new Lru(capacity), trace.keys, count);
    const lruPackage = await lruCacheHits(trace.keys, capacity, count);
    checks.push({
      trace: trace.id,
      capacity,
      requests: count,
      sieveSimulatorHits: simulated,
      sharedCacheHits: real.hits,
      sharedCacheEvictions: real.evictions,
      sieveMatches: simulated === real.hits,
      lruSimulatorHits: lruSim,
      lruCachePackageHits: lruPackage,
      lruMatches: lruSim === lruPackage,
    });
    process.stderr.write(
      `check ${trace.id} capacity ${capacity}: SIEVE simulator ${simulated} hits, SharedCache ${real.hits}; LRU simulator ${lruSim}, lru-cache ${lruPackage}\n`,
    );
  }

  writeResult(args.get("out") ?? "eviction.json", {
    ...resultHeader("eviction", thisCommand("bench/eviction.ts"), {
      "lru-cache": packageVersion("lru-cache"),
    }),
    method: {
      requests,
      universe: UNIVERSE,
      sizes: SIZES,
      fill: "demand fill: every miss inserts the key",
      policies: {
        sieve:
          "SIEVE as zig/src/sieve.zig (FIFO list, visited bit, hand from the tail toward the head)",
        lru: "least recently used (a Map's insertion order, moved on hit)",
        fifo: "first in, first out (baseline)",
      },
      elapsedSeconds: Math.round((Date.now() - started) / 1000),
    },
    traces: traces.map((t) => ({ id: t.id, description: t.description, requests: t.keys.length })),
    results,
    checks,
  });
  if (checks.some((c) => !c.sieveMatches || !c.lruMatches)) {
    console.error("a simulator does not match the real cache: see checks in the result file");
    process.exitCode = 1;
  }
}

await main();
