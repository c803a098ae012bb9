/**
 * One process of the demo (scripts/demo.ts): memoizes an expensive function
 * through the shared cache and reports what happened as JSON lines.
 * Usage: _demo_worker.ts <dir> <label> <requests> [victim]
 */

import { SharedCache } from "../mod.ts";
import { demoOptions } from "./_demo_options.ts";

const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const [dir, label, requestsText, role] = argv;
const runtime = (globalThis as { Deno?: unknown }).Deno ? "deno" : "bun";
const pid = (globalThis as unknown as { process: { pid: number } }).process.pid;

function emit(event: string, data: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ event, label, runtime, pid, at: Date.now(), ...data }));
}

/** Deliberately slow: the sum of the primes below 30,000 + n (about a millisecond). */
function expensive(n: number): number {
  const limit = 30_000 + n;
  let sum = 0;
  for (let i = 2; i < limit; i++) {
    let prime = true;
    for (let d = 2; d * d <= i; d++) {
      if (i % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) sum += i;
  }
  return sum;
}

using cache = SharedCache.open("demo", demoOptions(dir));
emit("ready");

let seed = pid;
function nextKey(): number {
  // A skewed key choice (most requests hit a few hot keys), 300 keys in all.
  seed = (seed * 1103515245 + 12345) >>> 0;
  const u = seed / 2 ** 32;
  return Math.floor(300 * u * u * u);
}

const requests = Number(requestsText);
let computed = 0;
let slowestSetMs = 0;
for (let r = 0; r < requests; r++) {
  const n = nextKey();
  const key = `primes:${n}`;
  let value = cache.get(key) as number | undefined;
  if (value === undefined) {
    value = expensive(n);
    computed++;
    const t0 = performance.now();
    cache.set(key, value);
    const ms = performance.now() - t0;
    if (ms > 50) emit("slow-set", { ms: Math.round(ms) });
    slowestSetMs = Math.max(slowestSetMs, ms);
  }
  if (role === "victim" && r === Math.floor(requests / 2)) {
    const tx = cache.lock();
    tx.set("victim", pid);
    emit("locked");
    // Hold the writer lock until the demo SIGKILLs this process.
    for (;;) {
      const end = Date.now() + 1000;
      while (Date.now() < end) { /* keep holding */ }
    }
  }
}
const s = cache.stats();
emit("done", {
  requests,
  computed,
  hits: s.hits,
  misses: s.misses,
  recoveries: s.recoveries,
  droppedWrites: s.droppedWrites,
  slowestSetMs: Math.round(slowestSetMs),
});
