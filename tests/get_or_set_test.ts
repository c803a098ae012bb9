/**
 * getOrSet on SharedCache and MemoryCache, and the hangs of issue 11 that
 * memoize and getOrSet must never have: a computation that asks for its own
 * key (directly, after an await, through other memoized functions), joins
 * of a computation that never ends, and results the cache cannot store.
 * Across processes: Deno and Bun workers (tests/fixtures/api_child.ts)
 * missing one key at once compute it once.
 */
// deno-lint-ignore-file require-await
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { BACKENDS, scratch, sleep } from "./_backends.ts";
import { test } from "./_harness.ts";
import { Child, type Runtime } from "./_proc.ts";
import { memoize, type Memoized, MemoryCache, RecursiveCallError, SharedCache } from "../mod.ts";

/** Settles with "pending" if `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"pending">((resolve) =>
    timer = setTimeout(() => resolve("pending"), ms)
  );
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

for (const { backend, make } of BACKENDS) {
  test(`getOrSet (${backend}): a miss computes and stores, a hit does not call fn`, async () => {
    const { cache, dispose } = make();
    try {
      let calls = 0;
      assert.equal(cache.getOrSet("k", () => ++calls), 1);
      assert.equal(cache.getOrSet("k", () => ++calls), 1);
      assert.equal(cache.get("k"), 1);
      const hit = cache.getOrSet("k", async () => ++calls);
      assert.ok(hit instanceof Promise, "a hit of an async fn is a promise");
      assert.equal(await hit, 1);
      assert.equal(await cache.getOrSet("a", async () => "x"), "x");
      assert.equal(cache.get("a"), "x");
      assert.equal(calls, 1);
      // undefined is a value, not a miss.
      assert.equal(cache.getOrSet("u", () => undefined), undefined);
      assert.equal(cache.getOrSet("u", () => "again"), undefined);
    } finally {
      dispose();
    }
  });

  test(`getOrSet (${backend}): ttlMs applies to the stored result`, async () => {
    const { cache, dispose } = make();
    try {
      cache.getOrSet("t", () => 1, { ttlMs: 30 });
      assert.equal(cache.get("t"), 1);
      await sleep(60);
      assert.equal(cache.has("t"), false);
      assert.equal(cache.getOrSet("t", () => 2, { ttlMs: Infinity }), 2);
    } finally {
      dispose();
    }
  });

  test(`getOrSet (${backend}): concurrent misses share one call; a failure reaches all and is not stored`, async () => {
    const { cache, dispose } = make();
    try {
      let calls = 0;
      const load = async () => {
        calls++;
        await sleep(20);
        return "v";
      };
      const values = await Promise.all(Array.from({ length: 8 }, () => cache.getOrSet("k", load)));
      assert.deepEqual(values, Array(8).fill("v"));
      assert.equal(calls, 1);
      const failing = async () => {
        calls++;
        await sleep(5);
        throw new Error("boom");
      };
      const outcomes = await Promise.allSettled([
        cache.getOrSet("f", failing),
        cache.getOrSet("f", failing),
      ]);
      assert.deepEqual(outcomes.map((o) => o.status), ["rejected", "rejected"]);
      assert.equal(calls, 2, "the joiner did not call again");
      assert.equal(cache.has("f"), false);
      assert.equal(await cache.getOrSet("f", async () => "later"), "later");
    } finally {
      dispose();
    }
  });

  test(`getOrSet (${backend}): arguments are checked with errors that name them`, () => {
    const { cache, dispose } = make();
    try {
      const bad = cache as unknown as { getOrSet(...args: unknown[]): unknown };
      assert.throws(() => bad.getOrSet(1, () => 1), /getOrSet: key must be a string, got 1/);
      assert.throws(() => bad.getOrSet("k", 1), /getOrSet: fn must be a function, got 1/);
      assert.throws(
        () => bad.getOrSet("k", () => 1, 5000),
        /getOrSet options \(the third argument\) must be an object such as \{ ttlMs: 5000 \}, got 5000/,
      );
      assert.throws(
        () => bad.getOrSet("k", () => 1, { ttl: 5 }),
        /getOrSet options \(the third argument\): unknown option "ttl"; did you mean `ttlMs`\?/,
      );
      assert.throws(() => bad.getOrSet("k", () => 1, { ttlMs: -1 }), RangeError);
      assert.throws(() => bad.getOrSet("k", () => 1, { waitTimeoutMs: 0 }), RangeError);
      assert.throws(() => bad.getOrSet("\u0000sf:k", () => 1), /reserved for single-flight/);
      assert.equal(cache.has("k"), false);
    } finally {
      dispose();
    }
  });

  test(`getOrSet (${backend}): clear() during a computation keeps its result out`, async () => {
    const { cache, dispose } = make();
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => release = resolve);
      const running = cache.getOrSet("k", async () => {
        await gate;
        return "old";
      });
      cache.clear();
      release();
      assert.equal(await running, "old");
      assert.equal(cache.has("k"), false);
    } finally {
      dispose();
    }
  });

  test(`getOrSet (${backend}): a join of a computation that never ends gives up after waitTimeoutMs`, async () => {
    const { cache, dispose } = make();
    try {
      void cache.getOrSet("k", () => new Promise<string>(() => {}));
      const started = performance.now();
      const value = await cache.getOrSet("k", async () => "mine", { waitTimeoutMs: 50 });
      const waited = performance.now() - started;
      assert.equal(value, "mine");
      assert.ok(waited >= 45 && waited < 5_000, `waited ${waited} ms for a 50 ms bound`);
      assert.equal(cache.get("k"), "mine");
    } finally {
      dispose();
    }
  });

  // Issue 11: "An async memoized function that calls itself with the same
  // key never settles, and every later call with that key hangs too."
  for (const when of ["after an await", "before any await"] as const) {
    test(`issue 11 (${backend}): an async getOrSet asking for its own key ${when} fails fast, uncached`, async () => {
      const { cache, dispose } = make();
      try {
        const load = async (): Promise<unknown> => {
          if (when === "after an await") await sleep(1);
          return await cache.getOrSet("self", load);
        };
        const outcome = await within(cache.getOrSet("self", load), 2_000);
        assert.notEqual(outcome, "pending", "the recursive call hung");
        assert.fail("the recursive call resolved");
      } catch (e) {
        assert.ok(e instanceof RecursiveCallError, `got ${e}`);
        assert.match(e.message, /getOrSet: load asked for key "self" while computing it/);
        assert.equal(e.key, "self");
        assert.equal(e.functionName, "load");
        // Not cached, and later calls do not hang.
        assert.equal(cache.has("self"), false);
        assert.equal(await within(cache.getOrSet("self", async () => 5), 2_000), 5);
      } finally {
        dispose();
      }
    });
  }

  test(`issue 11 (${backend}): a sync getOrSet asking for its own key throws RecursiveCallError`, () => {
    const { cache, dispose } = make();
    try {
      const load = (): unknown => cache.getOrSet("s", load);
      assert.throws(() => cache.getOrSet("s", load), RecursiveCallError);
      assert.equal(cache.has("s"), false);
      assert.equal(cache.getOrSet("s", () => 1), 1);
    } finally {
      dispose();
    }
  });

  test(`issue 11 (${backend}): memoized functions that call themselves with the same key fail fast`, async () => {
    const { cache, dispose } = make();
    try {
      // Directly, async, after an await.
      const selfAsync: (n: number) => Promise<number> = memoize(
        async function loadSelf(n: number): Promise<number> {
          await sleep(1);
          return await selfAsync(n);
        },
        { cache },
      );
      await assert.rejects(
        within(selfAsync(1), 2_000),
        (e: unknown) =>
          e instanceof RecursiveCallError && /memoize: loadSelf asked for key/.test(e.message),
      );
      // Through another memoized function: f(1) -> g(1) -> f(1).
      const f: (n: number) => Promise<number> = memoize(async (n: number) => {
        await sleep(1);
        return await g(n);
      }, { cache, key: (n) => `f${n}` });
      const g: (n: number) => Promise<number> = memoize(async (n: number) => {
        await sleep(1);
        return await f(n);
      }, { cache, key: (n) => `g${n}` });
      await assert.rejects(within(f(1), 2_000), RecursiveCallError);
      // Synchronous.
      const selfSync: (n: number) => number = memoize((n: number) => selfSync(n), {
        cache,
        key: (n) => `s${n}`,
      });
      assert.throws(() => selfSync(1), RecursiveCallError);
      // Recursion on other keys is fine, and nothing above was cached.
      const fib: (n: number) => Promise<number> = memoize(async (n: number) => {
        await sleep(0);
        return n < 2 ? n : (await fib(n - 1)) + (await fib(n - 2));
      }, { cache, key: (n) => `fib${n}` });
      assert.equal(await fib(20), 6765);
      assert.equal(cache.has("f1") || cache.has("g1") || cache.has("s1"), false);
    } finally {
      dispose();
    }
  });
}

test("issue 11 (memory): memoize's own memory cache: async recursion after an await fails fast", async () => {
  const self: Memoized<(n: number) => Promise<number>> = memoize(async (n: number) => {
    await sleep(1);
    return await self(n);
  });
  await assert.rejects(within(self(1), 2_000), RecursiveCallError);
  // A later call with that key does not hang either: it fails the same way.
  await assert.rejects(within(self(1), 2_000), RecursiveCallError);
  assert.equal(self.stats().inflight, 0);
});

test('issue 11 (shared): memoize over cache: "shared" recursion fails fast', async () => {
  const dir = mkdtempSync(join(tmpdir(), "shm-api-"));
  const name = `api-rec-${process.pid}`;
  const self: (n: number) => Promise<number> = memoize(async (n: number) => self(n), {
    cache: "shared",
    name,
    shared: { dir },
  });
  try {
    await assert.rejects(within(self(1), 2_000), RecursiveCallError);
    await assert.rejects(within(self(1), 2_000), RecursiveCallError);
  } finally {
    (self as unknown as { close(): void }).close();
    SharedCache.destroy(name, { dir });
    rmSync(dir, { recursive: true, force: true });
  }
});

test("memoize: a join in process is bounded by waitTimeoutMs and counted", async () => {
  let calls = 0;
  const f = memoize((n: number) => {
    calls++;
    return calls === 1 ? new Promise<number>(() => {}) : Promise.resolve(n);
  }, { async: true, waitTimeoutMs: 50 });
  void f(1);
  const started = performance.now();
  assert.equal(await f(1), 1);
  assert.ok(performance.now() - started >= 45);
  assert.equal(f.stats().inflightTimeouts, 1);
  assert.equal(f.stats().inflightJoins, 1);
});

test("getOrSet (shared): a result the cache cannot store reaches every caller, is counted, never an error", async () => {
  const { cache, dispose } = scratch();
  try {
    let calls = 0;
    const tooLarge = async () => {
      calls++;
      await sleep(10);
      return "z".repeat(1000);
    };
    const values = await Promise.all([
      cache.getOrSet("big", tooLarge),
      cache.getOrSet("big", tooLarge),
    ]);
    assert.deepEqual(values, ["z".repeat(1000), "z".repeat(1000)]);
    assert.equal(calls, 1);
    assert.equal(cache.has("big"), false);
    assert.equal(cache.stats().unstoredResults, 1);
    // Not storable by the codec (a TypeError from set): returned, counted.
    const date = new Date(0);
    assert.equal(cache.getOrSet("date", () => date), date);
    assert.equal(cache.stats().unstoredResults, 2);
    // Issue 11: memoize(() => new Date(0), { cache: shared })() returns the Date.
    const when = memoize(() => new Date(0), { cache });
    assert.deepEqual(when(), new Date(0));
    assert.equal(when.stats().unstorableSkips, 1);
    assert.equal(when.stats().errors, 0);
  } finally {
    dispose();
  }
});

// Across processes and runtimes.

const API_CHILD = fileURLToPath(new URL("./fixtures/api_child.ts", import.meta.url));
const MIXED: Runtime[] = ["deno", "bun", "deno", "bun"];

/** Workers running api_child.ts `args`, two under each runtime; `go` starts them together. */
async function startWorkers(
  space: { cache: SharedCache; name: string; dir: string },
  args: string[],
): Promise<Child[]> {
  const workers = MIXED.map((runtime) =>
    new Child(runtime, [space.dir, space.name, ...args], {}, API_CHILD)
  );
  await Promise.all(workers.map((w) => w.line("ready", 30_000)));
  space.cache.set("go", true);
  return workers;
}

async function stopWorkers(workers: Child[]): Promise<void> {
  for (const w of workers) w.kill("SIGKILL");
  await Promise.all(workers.map((w) => w.exited));
}

for (const kind of ["async", "sync"] as const) {
  test(
    `getOrSet across Deno and Bun processes (${kind}): four workers missing one key compute once`,
    async () => {
      const space = scratch();
      let workers: Child[] = [];
      try {
        workers = await startWorkers(space, ["get-or-set", "k", kind, "300"]);
        const results = await Promise.all(
          workers.map((w) => w.json<{ value: { pid: number } }>("result ", 30_000)),
        );
        const computed = workers.filter((w) => w.lines.includes("computing")).length;
        assert.equal(computed, 1, "more than one process computed");
        assert.equal(new Set(results.map((r) => r.value.pid)).size, 1, "the workers disagree");
        assert.deepEqual(space.cache.get("k"), results[0].value);
      } finally {
        await stopWorkers(workers);
        space.dispose();
      }
    },
    { timeoutMs: 60_000 },
  );
}

test("getOrSet across processes: a worker's recursion fails fast under each runtime", async () => {
  const space = scratch();
  let workers: Child[] = [];
  try {
    workers = await startWorkers(space, ["recurse", "r"]);
    for (const w of workers) {
      const result = await w.json<{ name: string; message: string }>("result ", 20_000);
      assert.equal(result.name, "RecursiveCallError", result.message);
    }
  } finally {
    await stopWorkers(workers);
    space.dispose();
  }
}, { timeoutMs: 60_000 });

test("getOrSet: a synchronous caller never gets a promise, even while an async computation of its key runs", async () => {
  const cache = new MemoryCache();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const slow = cache.getOrSet("k", async () => {
    await gate;
    return "async";
  });
  const now = cache.getOrSet("k", () => "sync");
  assert.equal(now, "sync", "the sync caller computed by itself");
  release();
  assert.equal(await slow, "async");
  // Both stored; the later write wins.
  assert.equal(cache.get("k"), "async");
});

test("memoize: waitTimeoutMs past the timers' range (Infinity) still joins, never times out at once", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  let calls = 0;
  const f = memoize(async (n: number) => {
    calls++;
    await gate;
    return n;
  }, { waitTimeoutMs: Infinity });
  const a = f(1);
  const b = f(1);
  // Let a timer that fired at once (a delay past 2^31 - 1 ms does) run.
  await new Promise((resolve) => setTimeout(resolve, 5));
  release();
  assert.deepEqual(await Promise.all([a, b]), [1, 1]);
  assert.equal(calls, 1);
  assert.equal(f.stats().inflightTimeouts, 0);
});
