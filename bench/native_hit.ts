/**
 * The native side alone: builds bench/native_hit.c against the library with
 * the repository's Zig (`zig cc`), then
 * - times a hit, a miss and an overwrite (ns per call, no JavaScript), and
 * - counts their instructions with callgrind (repeatable to the unit, so a
 *   change in the Zig code shows as a number, not as noise).
 *
 * ```sh
 * bun run bench/native_hit.ts       # writes bench/results/native.json
 * ```
 *
 * The timing uses zig/zig-out/lib/libshm_cache.so as built by
 * scripts/setup.sh (ReleaseFast for the build machine's CPU). Valgrind
 * cannot decode AVX-512, so the instruction counts come from a second build
 * of the same source for x86-64-v3 in a temporary prefix (zig-out is not
 * touched). Needs valgrind (scripts/bench-report.sh installs it).
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs, resultHeader, ROOT, tempBase, thisCommand, writeResult } from "./_common.ts";

const ZIG = join(ROOT, ".tools", "zig", "ziglang", "zig");
const CALLS = 100_000;

function run(command: string, args: string[], cwd = ROOT): string {
  const r = spawnSync(command, args, { cwd, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${r.status}): ${r.stderr?.slice(-2000)}`);
  }
  return r.stdout;
}

function build(libDir: string, out: string, cpu: string): void {
  run(ZIG, [
    "cc",
    "-O2",
    `-mcpu=${cpu}`,
    "-o",
    out,
    join(ROOT, "bench", "native_hit.c"),
    `-L${libDir}`,
    "-lshm_cache",
    "-lm",
    `-Wl,-rpath,${libDir}`,
  ]);
}

function scratchDir(): string {
  const dir = mkdtempSync(join(tempBase(), "shm-cache-native-"));
  chmodSync(dir, 0o700);
  return dir;
}

/** Inclusive instruction counts by function name, from callgrind_annotate. */
function inclusive(outFile: string): Map<string, number> {
  const text = run("callgrind_annotate", ["--inclusive=yes", "--threshold=100", outFile]);
  const counts = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(\S+?):(\S+)/.exec(line);
    if (m === null) continue;
    const n = Number(m[1].replaceAll(",", ""));
    const fn = m[3];
    counts.set(fn, Math.max(counts.get(fn) ?? 0, n));
  }
  return counts;
}

function main(): void {
  const args = parseArgs();
  const work = mkdtempSync(join(os.tmpdir(), "shm-cache-native-build-"));
  try {
    // Wall-clock: the library as the benchmarks load it.
    const builtLib = join(ROOT, "zig", "zig-out", "lib");
    const timer = join(work, "native_hit");
    build(builtLib, timer, "native");
    const timeDir = scratchDir();
    let timing: Record<string, number>;
    try {
      // Seven rounds inside; three runs of it, the median of each figure.
      const runs = [0, 1, 2].map(() =>
        JSON.parse(run(timer, ["time", timeDir])) as Record<string, number>
      );
      timing = {};
      for (const k of Object.keys(runs[0])) {
        timing[k] = runs.map((r) => r[k]).sort((a, b) => a - b)[1];
      }
    } finally {
      rmSync(timeDir, { recursive: true, force: true });
    }

    // Instructions: a baseline-ISA build that valgrind can decode.
    let instructions: Record<string, number> | undefined;
    let functions: Record<string, Record<string, number>> | undefined;
    let note = "";
    if (spawnSync("valgrind", ["--version"]).status === 0) {
      const prefix = join(work, "v3");
      run(
        ZIG,
        ["build", "-Doptimize=ReleaseFast", "-Dcpu=x86_64_v3", "--prefix", prefix],
        join(ROOT, "zig"),
      );
      const counter = join(work, "native_hit_v3");
      build(join(prefix, "lib"), counter, "x86_64_v3");
      instructions = {};
      functions = {};
      // One callgrind run per loop, so that every function's count is that
      // loop's alone.
      for (
        const [loop, name] of [["run_lookups", "lookupHit"], ["run_misses", "lookupMiss"], [
          "run_overwrites",
          "overwrite",
        ]]
      ) {
        const countDir = scratchDir();
        const outFile = join(work, `callgrind.${loop}.out`);
        try {
          run("valgrind", [
            "--tool=callgrind",
            `--toggle-collect=${loop}`,
            `--callgrind-out-file=${outFile}`,
            counter,
            "count",
            countDir,
          ]);
        } finally {
          rmSync(countDir, { recursive: true, force: true });
        }
        const counts = inclusive(outFile);
        instructions[name] = Math.round((counts.get(loop) ?? NaN) / CALLS);
        const top: Record<string, number> = {};
        for (const [fn, n] of [...counts].sort((a, b) => b[1] - a[1])) {
          const perCall = Math.round(n / CALLS);
          if (
            perCall < 5 || fn === loop || fn === "main" || fn.startsWith("__libc_start") ||
            !/^[A-Za-z_.@]/.test(fn)
          ) continue;
          top[fn] = perCall;
        }
        functions[name] = top;
      }
    } else {
      note = "valgrind not installed: no instruction counts";
    }
    const data = {
      ...resultHeader("native", thisCommand("bench/native_hit.ts"), {
        zig: run(ZIG, ["version"]).trim(),
      }),
      method: {
        driver:
          "bench/native_hit.c: 10,000 keys of 16-40 bytes (+ tag), 65-byte values, Zipf s=0.99 order",
        timing:
          "ns per call, median of 7 rounds of 1,000,000 calls (250,000 for overwrites), median of 3 runs",
        instructions:
          `callgrind, ${CALLS} calls of each, inclusive instructions per call (x86-64-v3 build)`,
        note,
      },
      timing,
      instructions,
      functionsPerCall: functions,
    };
    writeResult(args.get("out") ?? "native.json", data);
    console.log(JSON.stringify({ timing, instructions }, null, 1));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (!existsSync(ZIG)) process.exitCode = 1;
}

main();
