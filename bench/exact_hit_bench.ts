/**
 * Did exact keys and values (issue 11: lone surrogates, the strict JSON
 * check, the codec tags) slow the get hit path? Extracts the TypeScript
 * library and the native library of the commit before that work into a
 * temporary directory, builds its native library, and measures
 * `SharedCache.get` hits of both in one process, in interleaved rounds, on
 * the same keys and values, keys built per call:
 *
 * ```sh
 * bun run bench/exact_hit_bench.ts
 * deno run -A bench/exact_hit_bench.ts
 * ```
 *
 * Each row is this tree's time over the baseline's in the same round:
 * median (min-max) over rounds. Both trees load their own native library
 * (the baseline's ABI differs), each from its own `zig/zig-out`.
 *
 * @module
 */

import { do_not_optimize, measure } from "mitata";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { SharedCache } from "../mod.ts";

const BASELINE = "ca7c3d9"; // main just before issue 11's exact values (cda80fe)
const root = fileURLToPath(new URL("../", import.meta.url));
const zig = join(root, ".tools/zig/ziglang/zig");

function extractBaseline(): string {
  const dir = join(tmpdir(), `shm-cache-ts-baseline-${BASELINE}`);
  if (existsSync(join(dir, "zig/zig-out/lib"))) return dir;
  mkdirSync(dir, { recursive: true });
  const archive = execFileSync("git", ["-C", root, "archive", BASELINE, "mod.ts", "lib", "zig"]);
  execFileSync("tar", ["-x", "-C", dir], { input: archive });
  execFileSync(zig, ["build", "-Doptimize=ReleaseFast"], {
    cwd: join(dir, "zig"),
    stdio: "inherit",
  });
  return dir;
}

interface Cache {
  get(key: string): unknown;
  set(key: string, value: unknown): void;
  close(): void;
}
interface Opener {
  open(name: string, options: Record<string, unknown>): Cache;
  destroy(name: string, options: { dir: string }): void;
}

const baselineDir = extractBaseline();
const old = (await import(pathToFileURL(join(baselineDir, "mod.ts")).href)) as {
  SharedCache: Opener;
};
const dir = mkdtempSync(join(tmpdir(), "shmc-exact-bench-"));
const N = 1000;
const geometry = { capacity: N * 4, maxKeyBytes: 64, maxValueBytes: 1024, dir };
const trees: [string, Opener][] = [["baseline", old.SharedCache], ["this tree", SharedCache]];
const string64 = "0123456789abcdef".repeat(4);
const object = { id: 1, name: "Ada Lovelace", email: "ada@example.com", active: true, tags: ["a"] };

/** One cache per tree and case: memo on, memo off. */
const caches = trees.map(([label, opener]) => {
  const memoOn = opener.open(`exact-${label.replace(" ", "-")}`, geometry);
  const memoOff = opener.open(`exact-${label.replace(" ", "-")}`, {
    ...geometry,
    decodeCacheBytes: 0,
  });
  for (let i = 0; i < N; i++) {
    memoOn.set("user:" + i, string64);
    memoOn.set("usér:" + i, string64);
    memoOn.set("obj:" + i, object);
  }
  return { label, opener, memoOn, memoOff };
});

let at = 0;
function nextId(): number {
  return at = at + 1 === N ? 0 : at + 1;
}

const cases: [string, (c: (typeof caches)[number]) => unknown][] = [
  ["string hit, ASCII key, memo on", (c) => c.memoOn.get("user:" + nextId())],
  ["string hit, non-ASCII key, memo on", (c) => c.memoOn.get("usér:" + nextId())],
  ["string hit, ASCII key, memo off", (c) => c.memoOff.get("user:" + nextId())],
  ["small object hit (json)", (c) => c.memoOn.get("obj:" + nextId())],
];

const ROUNDS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
const runtime = g.Bun ? `Bun ${g.Bun.version}` : `Deno ${g.Deno?.version.deno}`;
console.log(
  `\nget hits, this tree / ${BASELINE} (${runtime}; ${ROUNDS} rounds, median (min-max)):`,
);
console.log(
  `| | ${BASELINE} | this tree | this tree / ${BASELINE} |\n| --- | ---: | ---: | ---: |`,
);
for (const [name, fn] of cases) {
  const ratios: number[] = [];
  const times = [[], []] as number[][];
  for (let round = 0; round <= ROUNDS; round++) {
    const ns = [];
    for (const c of caches) {
      ns.push((await measure(() => do_not_optimize(fn(c)), { min_cpu_time: 100e6 })).avg);
    }
    if (round === 0) continue;
    times[0].push(ns[0]);
    times[1].push(ns[1]);
    ratios.push(ns[1] / ns[0]);
  }
  const range = `${Math.min(...ratios).toFixed(2)}x-${Math.max(...ratios).toFixed(2)}x`;
  console.log(
    `| ${name} | ${median(times[0]).toFixed(0)} ns | ${median(times[1]).toFixed(0)} ns | ${
      median(ratios).toFixed(2)
    }x (${range}) |`,
  );
}
console.log();

for (const c of caches) {
  c.memoOn.close();
  c.memoOff.close();
  c.opener.destroy(`exact-${c.label.replace(" ", "-")}`, { dir });
}
rmSync(dir, { recursive: true, force: true });
