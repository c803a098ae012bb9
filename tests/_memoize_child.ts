/**
 * A worker process for memoize_shared_test.ts: opens a SharedCache, memoizes
 * a slow function on it and calls it once, reporting on stdout one line per
 * step:
 *
 * - `ready` once the cache is open;
 * - `calling` just before the call (after the key `go` appears in the cache,
 *   when `waitForGo` is set, so that several workers call at once);
 * - `computing` when the original function starts;
 * - `result <json>` with the value and the memoize stats.
 *
 * Usage: `<runtime> _memoize_child.ts '<json ChildConfig>'`.
 */
import process from "node:process";
import { SharedCache } from "../mod.ts";
import { memoize } from "../lib/memoize.ts";

/** What the parent asks a worker to do. */
export interface ChildConfig {
  name: string;
  dir: string;
  /** Memoize an async function (awaits a timer) or a sync one (blocks the thread). */
  mode: "async" | "sync";
  /** The argument of the call. */
  id: number;
  /** How long the computation takes. */
  computeMs: number;
  waitTimeoutMs: number;
  waitForGo: boolean;
}

/**
 * The cache geometry all processes of a test share (memoize_shared_test.ts
 * has the same; importing this module would run it, so only types cross).
 */
const CHILD_CACHE_OPTIONS = { capacity: 64, maxKeyBytes: 128, maxValueBytes: 1024 } as const;

const config = JSON.parse(process.argv[process.argv.length - 1]) as ChildConfig;
const say = (line: string) => process.stdout.write(line + "\n");
const sleeper = new Int32Array(new SharedArrayBuffer(4));

const cache = SharedCache.open(config.name, { ...CHILD_CACHE_OPTIONS, dir: config.dir });
const compute = config.mode === "async"
  ? async (id: number) => {
    say("computing");
    await new Promise((resolve) => setTimeout(resolve, config.computeMs));
    return { id, pid: process.pid };
  }
  : (id: number) => {
    say("computing");
    Atomics.wait(sleeper, 0, 0, config.computeMs);
    return { id, pid: process.pid };
  };
const slow = memoize(compute, { cache, waitTimeoutMs: config.waitTimeoutMs });
say("ready");

if (config.waitForGo) {
  // Bound: the parent sets `go` within seconds, or the test times out and kills us.
  while (cache.get("go") === undefined) Atomics.wait(sleeper, 0, 0, 1);
}
say("calling");
const value = await slow(config.id);
say(`result ${JSON.stringify({ value, stats: slow.stats() })}`);
cache.close();
