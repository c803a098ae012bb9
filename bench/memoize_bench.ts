/**
 * memoize() costs, under whichever runtime runs this file:
 *
 * - a memoized hit against a direct call of a cheap function and against a
 *   hand-written `Map` lookup, for the memory and the shared backend, with a
 *   one-number argument and with a typical `(id, options)` pair;
 * - an asynchronous hit;
 * - the default key derivation for typical argument shapes (JSON.stringify
 *   of the same arguments as a yardstick, though it is not a faithful key).
 *
 * Run: `bun run bench/memoize_bench.ts` or `deno run -A bench/memoize_bench.ts`
 * (scripts/bench.sh runs both).
 */
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { SharedCache } from "../mod.ts";
import { memoize } from "../lib/memoize.ts";
import { MemoryCache } from "../lib/memory_cache.ts";
import { deriveKey } from "../lib/_key.ts";

const dir = mkdtempSync(join(tmpdir(), "shm-memo-bench-"));
const name = `memo-bench-${process.pid}`;
const shared = SharedCache.open(name, {
  capacity: 1024,
  maxKeyBytes: 256,
  maxValueBytes: 1024,
  dir,
});

// The function being memoized: cheap, so that the numbers show memoize's own
// cost (a real candidate for memoization is far slower than any of these).
const square = (n: number): number => n * n;
const profile = (id: number, opts: { full: boolean }) => ({
  id,
  full: opts.full,
  name: `user ${id}`,
});

const memorySquare = memoize(square);
const sharedSquare = memoize(square, { cache: shared });
const memoryProfile = memoize(profile);
const memoryProfileKeyed = memoize(profile, { key: (id, opts) => `${id}:${opts.full}` });
const sharedProfile = memoize(profile, { cache: shared });
const asyncSquare = memoize(async (n: number) => await Promise.resolve(n * n));

// Every variant cycles through 16 ids, so that no JIT folds a constant call.
const IDS = Array.from({ length: 16 }, (_, i) => 1000 + i);
const RAW_KEYS = IDS.map((id) => `d${id},`);
let turn = 0;
const next = () => turn++ & 15;

const squares = new Map<number, number>();
const profiles = new Map<string, ReturnType<typeof profile>>();
const memoryCache = new MemoryCache<number>();
for (const [i, id] of IDS.entries()) {
  squares.set(id, square(id));
  profiles.set(`${id}:true`, profile(id, { full: true }));
  memoryCache.set(RAW_KEYS[i], square(id));
  shared.set(RAW_KEYS[i], square(id));
  // Warm every cache so that the loops below measure hits.
  memorySquare(id);
  sharedSquare(id);
  memoryProfile(id, { full: true });
  memoryProfileKeyed(id, { full: true });
  sharedProfile(id, { full: true });
  await asyncSquare(id);
}

summary(() => {
  group("hit, one number argument", () => {
    bench("direct call (no cache)", () => do_not_optimize(square(IDS[next()])));
    bench("Map.get (hand-written cache)", () => do_not_optimize(squares.get(IDS[next()])));
    bench(
      "MemoryCache.get (raw, key given)",
      () => do_not_optimize(memoryCache.get(RAW_KEYS[next()])),
    );
    bench("memoize, memory", () => do_not_optimize(memorySquare(IDS[next()])));
    bench("SharedCache.get (raw, key given)", () => do_not_optimize(shared.get(RAW_KEYS[next()])));
    bench("memoize, shared", () => do_not_optimize(sharedSquare(IDS[next()])));
  });
});

summary(() => {
  group("hit, (id, { full }) arguments", () => {
    const opts = { full: true };
    bench("direct call (no cache)", () => do_not_optimize(profile(IDS[next()], opts)));
    bench(
      "Map.get with a template key",
      () => do_not_optimize(profiles.get(`${IDS[next()]}:${opts.full}`)),
    );
    bench(
      "memoize, memory, key option",
      () => do_not_optimize(memoryProfileKeyed(IDS[next()], opts)),
    );
    bench("memoize, memory, derived key", () => do_not_optimize(memoryProfile(IDS[next()], opts)));
    bench("memoize, shared, derived key", () => do_not_optimize(sharedProfile(IDS[next()], opts)));
  });
});

group("async hit", () => {
  bench(
    "await direct async call",
    async () => do_not_optimize(await Promise.resolve(square(IDS[next()]))),
  );
  bench("await memoize, memory", async () => do_not_optimize(await asyncSquare(IDS[next()])));
});

const shapes: [string, unknown[]][] = [
  ["one number", [42]],
  ["one short string", ["user:42"]],
  ["three primitives", [42, "en", true]],
  ["id + small options object", [42, { full: true, locale: "en" }]],
  ["array of 10 numbers", [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]],
  ["nested object (3 levels, 9 leaves)", [{
    a: { b: { c: 1, d: 2 }, e: [3, 4] },
    f: "x",
    g: { h: null, i: true, j: 5 },
  }]],
  ["Uint8Array(32)", [new Uint8Array(32).fill(7)]],
];

group("key derivation", () => {
  for (const [label, args] of shapes) {
    bench(`deriveKey: ${label}`, () => do_not_optimize(deriveKey(args)));
  }
});

group("yardstick: JSON.stringify of the same arguments (not a faithful key)", () => {
  for (const [label, args] of shapes) {
    bench(`JSON.stringify: ${label}`, () => do_not_optimize(JSON.stringify(args)));
  }
});

try {
  await run();
} finally {
  shared.close();
  SharedCache.destroy(name, { dir });
  rmSync(dir, { recursive: true, force: true });
}
