/**
 * Did the robustness work slow the hit path? Builds the native library of
 * the foundation commit (before liveness slots, crash rebuild, fork and
 * thread handling) next to the current one and measures a raw FFI hit on
 * each, in the same run, on the same keys and values:
 *
 * ```sh
 * bash scripts/setup.sh && bun run bench/hit_path_bench.ts
 * deno run -A bench/hit_path_bench.ts
 * ```
 *
 * Only the native side is compared (one `shmc_lookup` call per hit, key and
 * value buffers reused), so the TypeScript codec does not blur the answer.
 *
 * @module
 */

import { bench, do_not_optimize, run, summary } from "mitata";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const BASELINE = "50e332b"; // the foundation commit
const root = fileURLToPath(new URL("../", import.meta.url));
const zig = join(root, ".tools/zig/ziglang/zig");
const current = join(root, "zig/zig-out/lib/libshm_cache.so");

function buildBaseline(): string {
  const dir = join(tmpdir(), `shm-cache-baseline-${BASELINE}`);
  const lib = join(dir, "zig/zig-out/lib/libshm_cache.so");
  if (existsSync(lib)) return lib;
  mkdirSync(dir, { recursive: true });
  const archive = execFileSync("git", ["-C", root, "archive", BASELINE, "zig"]);
  execFileSync("tar", ["-x", "-C", dir], { input: archive });
  execFileSync(zig, ["build", "-Doptimize=ReleaseFast"], {
    cwd: join(dir, "zig"),
    stdio: "inherit",
  });
  return lib;
}

const common = {
  shmc_open: {
    parameters: ["buffer", "u32", "buffer", "u32", "buffer", "buffer", "u32", "buffer"],
    result: "pointer",
  },
  shmc_close: { parameters: ["pointer"], result: "void" },
  shmc_lookup: { parameters: ["pointer", "buffer", "u32", "buffer", "u32"], result: "i32" },
} as const;
const insertV1 = {
  parameters: ["pointer", "buffer", "u32", "buffer", "u32", "f64"],
  result: "i32",
} as const;
const insertV2 = {
  parameters: ["pointer", "buffer", "u32", "buffer", "u32", "f64", "u32"],
  result: "i32",
} as const;

// deno-lint-ignore no-explicit-any
type Lib = Record<string, (...args: any[]) => any>;
// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const BUN_FFI = "bun:ffi";
const bunFfi = g.Bun ? await import(BUN_FFI) : undefined;

function load(path: string, v2: boolean): Lib {
  const defs = { ...common, shmc_insert: v2 ? insertV2 : insertV1 };
  if (!bunFfi) return g.Deno.dlopen(path, defs).symbols;
  const t = (x: string) => (x === "pointer" || x === "buffer" ? "ptr" : x);
  const bunDefs: Record<string, unknown> = {};
  for (const [k, d] of Object.entries(defs)) {
    bunDefs[k] = { args: (d.parameters as readonly string[]).map(t), returns: t(d.result) };
  }
  return bunFfi.dlopen(path, bunDefs).symbols;
}

const enc = new TextEncoder();
const dir = mkdtempSync(
  join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "shm-cache-hitbench-"),
);
const KEYS = 1000;
const keys = Array.from({ length: KEYS }, (_, i) => enc.encode(`suser:${i}`));
const value = enc.encode("\x06" + "0123456789abcdef".repeat(4));

function openOn(lib: Lib, name: string, v2: boolean): unknown {
  // The sixth field (codec, ABI 9: -1 = not given) and the seventh (on
  // mismatch, ABI 10: 0 = fail) are not read by the baseline.
  const config = new Float64Array([10_000, 65, 1025, 0, 500, -1, 0]);
  const err = new Uint8Array(256);
  const status = new Int32Array(2);
  const d = enc.encode(dir);
  const n = enc.encode(name);
  const h = lib.shmc_open(d, d.length, n, n.length, config, err, 256, status);
  if (h === null || h === 0) throw new Error(new TextDecoder().decode(err.subarray(0, status[1])));
  for (const k of keys) {
    const rc = v2
      ? lib.shmc_insert(h, k, k.length, value, value.length, -1, 0)
      : lib.shmc_insert(h, k, k.length, value, value.length, -1);
    if (rc !== 0) throw new Error(`insert failed: ${rc}`);
  }
  return h;
}

const baseline = load(buildBaseline(), false);
const head = load(current, true);
const hb = openOn(baseline, "baseline", false);
const hh = openOn(head, "head", true);
const out = new Uint8Array(1026);
let i = 0;
let j = 0;

summary(() => {
  bench(`hit, foundation ${BASELINE}`, () => {
    const k = keys[i = (i + 1) % KEYS];
    do_not_optimize(baseline.shmc_lookup(hb, k, k.length, out, out.length));
  });
  bench("hit, HEAD", () => {
    const k = keys[j = (j + 1) % KEYS];
    do_not_optimize(head.shmc_lookup(hh, k, k.length, out, out.length));
  });
});

const results = await run();
const avg = (name: string) =>
  // deno-lint-ignore no-explicit-any
  (results.benchmarks.find((b: any) => b.alias === name)?.runs[0]?.stats?.avg ?? NaN) as number;
const before = avg(`hit, foundation ${BASELINE}`);
const after = avg("hit, HEAD");
console.log(
  `\n${g.Bun ? `bun ${g.Bun.version}` : `deno ${g.Deno.version.deno}`}: raw FFI hit ${
    before.toFixed(1)
  } ns before, ` +
    `${after.toFixed(1)} ns after: HEAD/foundation = ${(after / before).toFixed(3)}`,
);
baseline.shmc_close(hb);
head.shmc_close(hh);
rmSync(dir, { recursive: true, force: true });
process.exitCode = 0;
