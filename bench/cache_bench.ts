/**
 * Micro-benchmark of `SharedCache` beside an in-process `Map` doing the same
 * work, measured in the same run with mitata. The same file runs under both
 * runtimes:
 *
 * ```sh
 * bun run bench/cache_bench.ts
 * deno run -A bench/cache_bench.ts
 * ```
 *
 * It opens a fresh cache in a fresh temporary directory (under `/dev/shm`
 * when it exists, like the library's default, else the system temp
 * directory) and removes the directory at exit. Keys are built per call
 * from a rotating index over 1,000 stored keys, for the cache and the `Map`
 * alike, so both pay the same key-building cost. At the end it prints the
 * ratio shm-cache/`Map` of each operation, then the heap allocated per
 * operation, measured apart from mitata (see {@linkcode measureAllocations}).
 *
 * @module
 */

import { bench, do_not_optimize, group, run, summary } from "mitata";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { SharedCache } from "../mod.ts";

const KEYS = 1_000;
const CAPACITY = 10_000;
const STRING_VALUE = "0123456789abcdef".repeat(4); // 64 bytes of ASCII
const OBJECT_VALUE = { id: 1, name: "Ada", tags: ["a", "b"] };

// Two key families of the same length: "user:" keys hold the object,
// "page:" keys the string; "miss:" keys are never stored.
const OBJECT_PREFIX = "user:";
const STRING_PREFIX = "page:";
const MISS_PREFIX = "miss:";

// deno-lint-ignore no-explicit-any
const runtimeGlobal = globalThis as any;
const isBun = runtimeGlobal.Bun !== undefined;
const runtimeName = isBun ? "bun" : "deno";
const runtimeVersion = isBun
  ? `${runtimeGlobal.Bun.version} (JavaScriptCore)`
  : `${runtimeGlobal.Deno.version.deno} (V8 ${runtimeGlobal.Deno.version.v8})`;

function tempBase(): string {
  try {
    if (statSync("/dev/shm").isDirectory()) return "/dev/shm";
  } catch {
    // No /dev/shm (macOS): the system temp directory it is.
  }
  return tmpdir();
}

const DIR_PREFIX = "shm-cache-bench-";

/**
 * Removes the directories of earlier runs that were killed (Ctrl-C ends the
 * process without running `finally`, and mitata's loops never yield to the
 * event loop where a signal listener would run). A directory is named after
 * its run's process id and is only removed once no such process exists.
 */
function removeAbandoned(base: string): void {
  for (const name of readdirSync(base)) {
    const match = name.startsWith(DIR_PREFIX)
      ? /^(\d+)-/.exec(name.slice(DIR_PREFIX.length))
      : null;
    if (match === null) continue;
    try {
      process.kill(Number(match[1]), 0);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ESRCH") rmSync(join(base, name), { recursive: true, force: true });
    }
  }
}

/** One row of the ratio table: a labelled pair of mitata benchmarks. */
interface Pair {
  label: string;
  shm: string;
  map: string;
}

const pairs: Pair[] = [];
const KEY_ONLY = "key build only (control)";

function pair(label: string): Pair {
  const p = { label, shm: `shm-cache ${label}`, map: `Map ${label}` };
  pairs.push(p);
  return p;
}

function populate(cache: SharedCache, map: Map<string, unknown>): void {
  for (let i = 0; i < KEYS; i++) {
    cache.set(STRING_PREFIX + i, STRING_VALUE);
    cache.set(OBJECT_PREFIX + i, OBJECT_VALUE);
    map.set(STRING_PREFIX + i, STRING_VALUE);
    map.set(OBJECT_PREFIX + i, OBJECT_VALUE);
  }
}

/** Fails loudly if the cache does not return what the benchmark assumes. */
function checkSetup(cache: SharedCache): void {
  const s = cache.get(STRING_PREFIX + 7);
  const o = cache.get(OBJECT_PREFIX + 7) as typeof OBJECT_VALUE | undefined;
  const m = cache.get(MISS_PREFIX + 7);
  if (s !== STRING_VALUE) throw new Error(`setup: string hit returned ${JSON.stringify(s)}`);
  if (JSON.stringify(o) !== JSON.stringify(OBJECT_VALUE)) {
    throw new Error(`setup: object hit returned ${JSON.stringify(o)}`);
  }
  if (m !== undefined) throw new Error(`setup: miss returned ${JSON.stringify(m)}`);
  if (cache.size !== 2 * KEYS) {
    throw new Error(`setup: size is ${cache.size}, expected ${2 * KEYS}`);
  }
}

// Each benchmark is its own closure literal with its own index, so every
// call site stays monomorphic and no benchmark shifts another's keys.
function defineBenchmarks(cache: SharedCache, map: Map<string, unknown>): void {
  const getString = pair("get hit, string 64 B");
  const getObject = pair("get hit, object");
  const getMiss = pair("get miss");
  const hasHit = pair("has hit (lookup, no decode)");
  const setString = pair("set overwrite, string 64 B");
  const setObject = pair("set overwrite, object");

  // Both sides of every pair build their key per call; this is that part
  // alone, so the table can also show each side net of it.
  group(KEY_ONLY, () => {
    let i = 0;
    bench(KEY_ONLY, () => {
      if (++i === KEYS) i = 0;
      return do_not_optimize(STRING_PREFIX + i);
    });
  });

  group(getString.label, () => {
    summary(() => {
      let i = 0;
      bench(getString.shm, () => {
        if (++i === KEYS) i = 0;
        return do_not_optimize(cache.get(STRING_PREFIX + i));
      });
      let j = 0;
      bench(getString.map, () => {
        if (++j === KEYS) j = 0;
        return do_not_optimize(map.get(STRING_PREFIX + j));
      }).baseline();
    });
  });

  group(getObject.label, () => {
    summary(() => {
      let i = 0;
      bench(getObject.shm, () => {
        if (++i === KEYS) i = 0;
        return do_not_optimize(cache.get(OBJECT_PREFIX + i));
      });
      let j = 0;
      bench(getObject.map, () => {
        if (++j === KEYS) j = 0;
        return do_not_optimize(map.get(OBJECT_PREFIX + j));
      }).baseline();
    });
  });

  // A miss never touches a value, so one pair covers both value kinds.
  group(getMiss.label, () => {
    summary(() => {
      let i = 0;
      bench(getMiss.shm, () => {
        if (++i === KEYS) i = 0;
        return do_not_optimize(cache.get(MISS_PREFIX + i));
      });
      let j = 0;
      bench(getMiss.map, () => {
        if (++j === KEYS) j = 0;
        return do_not_optimize(map.get(MISS_PREFIX + j));
      }).baseline();
    });
  });

  // The same FFI lookup as a hit, without copying or decoding the value:
  // "get hit" minus this is roughly the cost of the decode.
  group(hasHit.label, () => {
    summary(() => {
      let i = 0;
      bench(hasHit.shm, () => {
        if (++i === KEYS) i = 0;
        return do_not_optimize(cache.has(STRING_PREFIX + i));
      });
      let j = 0;
      bench(hasHit.map, () => {
        if (++j === KEYS) j = 0;
        return do_not_optimize(map.has(STRING_PREFIX + j));
      }).baseline();
    });
  });

  group(setString.label, () => {
    summary(() => {
      let i = 0;
      bench(setString.shm, () => {
        if (++i === KEYS) i = 0;
        cache.set(STRING_PREFIX + i, STRING_VALUE);
      });
      let j = 0;
      bench(setString.map, () => {
        if (++j === KEYS) j = 0;
        return do_not_optimize(map.set(STRING_PREFIX + j, STRING_VALUE));
      }).baseline();
    });
  });

  // The Map stores a reference; the cache serializes the object (JSON) and
  // copies it into shared memory. That is the price of sharing it.
  group(setObject.label, () => {
    summary(() => {
      let i = 0;
      bench(setObject.shm, () => {
        if (++i === KEYS) i = 0;
        cache.set(OBJECT_PREFIX + i, OBJECT_VALUE);
      });
      let j = 0;
      bench(setObject.map, () => {
        if (++j === KEYS) j = 0;
        return do_not_optimize(map.set(OBJECT_PREFIX + j, OBJECT_VALUE));
      }).baseline();
    });
  });
}

interface Timing {
  avg: number;
  p50: number;
}

function timings(benchmarks: Awaited<ReturnType<typeof run>>["benchmarks"]): Map<string, Timing> {
  const out = new Map<string, Timing>();
  for (const trial of benchmarks) {
    const stats = trial.runs[0]?.stats;
    if (stats !== undefined) out.set(trial.alias, { avg: stats.avg, p50: stats.p50 });
  }
  return out;
}

function ns(value: number): string {
  return value.toFixed(1);
}

function printRatios(times: Map<string, Timing>): void {
  console.log(
    `\nshm-cache / Map, ${runtimeName} ${runtimeVersion}, ${process.arch}-${process.platform}`,
  );
  const key = times.get(KEY_ONLY);
  const keyText = key === undefined ? "not measured" : `${key.avg.toFixed(1)} ns avg`;
  console.log("ns/op from mitata (avg and p50 of its samples); ratio = shm-cache / Map;");
  console.log(`net ratio = the avg ratio with both sides less the key build alone (${keyText})\n`);
  const width = Math.max(...pairs.map((p) => p.label.length));
  const head = ["shm avg", "Map avg", "ratio", "shm p50", "Map p50", "ratio", "net ratio"];
  console.log(`${"operation".padEnd(width)}${head.map((h) => h.padStart(11)).join("")}`);
  for (const p of pairs) {
    const shm = times.get(p.shm);
    const map = times.get(p.map);
    if (shm === undefined || map === undefined) {
      console.log(`${p.label.padEnd(width)}  (no result: the benchmark failed, see above)`);
      continue;
    }
    // Net of the key build; meaningless when the Map's remainder is within noise.
    const mapNet = key === undefined ? 0 : map.avg - key.avg;
    const net = key === undefined || mapNet < 2 ? "n/a" : ratio(shm.avg - key.avg, mapNet);
    const cells = [ns(shm.avg), ns(map.avg), ratio(shm.avg, map.avg), ns(shm.p50), ns(map.p50)];
    cells.push(ratio(shm.p50, map.p50), net);
    console.log(`${p.label.padEnd(width)}${cells.map((c) => c.padStart(11)).join("")}`);
  }
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}

// ---------------------------------------------------------------------------
// Allocation per operation, apart from mitata (whose heap column uses
// process memory under Bun, and sees collections mid-batch under Deno).
//
// Each round collects garbage, runs an operation `n` times over prebuilt
// keys (so key building is not counted) and reads the heap again; the
// figure is the median over the rounds, less the same loop doing nothing.
// - Deno (V8): `Deno.memoryUsage().heapUsed` grows with every allocation
//   until a collection, and a full collection before each round empties the
//   young generation, so a round of 2,000 operations fits between two
//   collections. The collector is reached by setting V8's `--expose-gc`
//   flag at run time (`node:v8`) and taking `gc` from a new context
//   (`node:vm`); without it the rounds still run, only noisier.
// - Bun (JavaScriptCore): `heapUsed` only moves at a collection, but
//   `bun:jsc` `heapStats()` counts every cell not yet collected by type, and
//   its `heapCapacity` grows with the blocks allocation takes. Cell bytes
//   exclude the characters of strings, which JSC keeps outside its heap.

interface Probe {
  /** Heap bytes now. */
  bytes(): number;
  /** Cell counts by type now (Bun only). */
  cells(): Record<string, number> | undefined;
  collect(): void;
  /** Operations per round. */
  n: number;
  note: string;
}

async function makeProbe(): Promise<Probe> {
  if (isBun) {
    const jscName = "bun:jsc"; // through a variable, so Deno never resolves it
    const jsc = await import(jscName);
    return {
      bytes: () => jsc.heapStats().heapCapacity,
      cells: () => jsc.heapStats().objectTypeCounts,
      collect: () => runtimeGlobal.Bun.gc(true),
      n: 10_000,
      note:
        "bytes = growth of bun:jsc heapStats().heapCapacity (GC-heap cells; string characters live outside it)",
    };
  }
  let collect = (): void => {};
  let how = "no collector reachable; figures are noisier";
  try {
    const v8 = await import("node:v8");
    const vm = await import("node:vm");
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc");
    if (typeof gc === "function") {
      collect = () => gc();
      how = "full gc before each round";
    }
  } catch {
    // Keep the no-op collector.
  }
  return {
    bytes: () => runtimeGlobal.Deno.memoryUsage().heapUsed,
    cells: () => undefined,
    collect,
    n: 2_000,
    note: `bytes = growth of Deno.memoryUsage().heapUsed (${how})`,
  };
}

interface AllocResult {
  bytes: number;
  cells: Record<string, number>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** Heap bytes (and, under Bun, cells by type) allocated per call of `op`. */
function measureAllocations(
  probe: Probe,
  keys: string[],
  op: (key: string) => unknown,
): AllocResult {
  const rounds = 11;
  const n = probe.n;
  for (let i = 0; i < 20_000; i++) do_not_optimize(op(keys[i % KEYS]));
  const bytes: number[] = [];
  const cellRounds: Record<string, number>[] = [];
  for (let r = 0; r < rounds; r++) {
    probe.collect();
    const c0 = probe.cells();
    const b0 = probe.bytes();
    for (let i = 0, k = 0; i < n; i++) {
      do_not_optimize(op(keys[k]));
      if (++k === KEYS) k = 0;
    }
    const b1 = probe.bytes();
    const c1 = probe.cells();
    bytes.push((b1 - b0) / n);
    if (c0 !== undefined && c1 !== undefined) {
      const delta: Record<string, number> = {};
      for (const type of Object.keys(c1)) delta[type] = ((c1[type] ?? 0) - (c0[type] ?? 0)) / n;
      cellRounds.push(delta);
    }
  }
  const cells: Record<string, number> = {};
  const types = new Set(cellRounds.flatMap((d) => Object.keys(d)));
  for (const type of types) {
    const m = median(cellRounds.map((d) => d[type] ?? 0));
    if (Math.abs(m) >= 0.05) cells[type] = m;
  }
  return { bytes: median(bytes), cells };
}

function printAllocations(probe: Probe, cache: SharedCache, map: Map<string, unknown>): void {
  const stringKeys = Array.from({ length: KEYS }, (_, i) => STRING_PREFIX + i);
  const objectKeys = Array.from({ length: KEYS }, (_, i) => OBJECT_PREFIX + i);
  const missKeys = Array.from({ length: KEYS }, (_, i) => MISS_PREFIX + i);
  const objectText = JSON.stringify(OBJECT_VALUE);
  const stringCodes = Array.from(STRING_VALUE, (ch) => ch.charCodeAt(0));
  const fromCharCode = String.fromCharCode;

  const rows: [string, string[], (key: string) => unknown][] = [
    ["empty loop (subtracted below)", stringKeys, (key) => key],
    ["Map get hit", stringKeys, (key) => map.get(key)],
    ["shm-cache get hit, string 64 B", stringKeys, (key) => cache.get(key)],
    [
      "  the value alone: a fresh 64-char string",
      stringKeys,
      () => fromCharCode.apply(null, stringCodes),
    ],
    ["shm-cache get hit, object", objectKeys, (key) => cache.get(key)],
    ["  the value alone: JSON.parse(text)", objectKeys, () => JSON.parse(objectText)],
    ["shm-cache get miss", missKeys, (key) => cache.get(key)],
    ["shm-cache has hit", stringKeys, (key) => cache.has(key)],
    ["shm-cache set overwrite, string 64 B", stringKeys, (key) => cache.set(key, STRING_VALUE)],
    ["shm-cache set overwrite, object", objectKeys, (key) => cache.set(key, OBJECT_VALUE)],
    ["Map set overwrite", stringKeys, (key) => map.set(key, STRING_VALUE)],
  ];

  const results = rows.map(([label, keys, op]) => ({
    label,
    result: measureAllocations(probe, keys, op),
  }));
  const base = results[0].result;
  console.log(
    `\nheap allocated per operation, ${runtimeName} (prebuilt keys; median of 11 rounds of ${probe.n})`,
  );
  console.log(`${probe.note}\n`);
  const width = Math.max(...rows.map(([label]) => label.length));
  console.log(
    `${"operation".padEnd(width)}  ${"bytes/op".padStart(8)}${isBun ? "  cells/op by type" : ""}`,
  );
  for (const { label, result } of results) {
    const bytes = result === base ? result.bytes : result.bytes - base.bytes;
    let line = `${label.padEnd(width)}  ${bytes.toFixed(1).padStart(8)}`;
    if (isBun) {
      const cells = Object.entries(result.cells)
        .map(([type, count]) =>
          [type, count - (result === base ? 0 : base.cells[type] ?? 0)] as const
        )
        .filter(([, count]) => Math.abs(count) >= 0.05)
        .map(([type, count]) => `${type} ${count.toFixed(2)}`);
      line += `  ${cells.length === 0 ? "-" : cells.join(", ")}`;
    }
    console.log(line);
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const base = tempBase();
  removeAbandoned(base);
  const dir = mkdtempSync(join(base, `${DIR_PREFIX}${process.pid}-`));
  let cache: SharedCache | undefined;
  try {
    cache = SharedCache.open("bench", {
      capacity: CAPACITY,
      maxKeyBytes: 64,
      maxValueBytes: 1024,
      dir,
    });
    const map = new Map<string, unknown>();
    populate(cache, map);
    checkSetup(cache);
    console.log(`${runtimeName} ${runtimeVersion}; cache in ${dir}; ${KEYS} keys per value kind\n`);

    defineBenchmarks(cache, map);
    const { benchmarks } = await run();
    const times = timings(benchmarks);

    const stats = cache.stats();
    if (stats.readTimeouts !== 0 || stats.droppedWrites !== 0) {
      console.log(
        `warning: ${stats.readTimeouts} read timeouts, ${stats.droppedWrites} dropped writes`,
      );
    }
    printRatios(times);
    printAllocations(await makeProbe(), cache, map);
    console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    cache?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
