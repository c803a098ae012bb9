/**
 * The API of issue 11 point 6 beyond getOrSet, on SharedCache and
 * MemoryCache alike: increment (atomic across Deno and Bun processes, keeps
 * the entry's expiry, refuses a non-number), keys and entries (live entries
 * only, never a torn entry while other processes write), getMany and
 * setMany (one lock, nothing stored if one entry is refused).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { BACKENDS, scratch, sleep } from "./_backends.ts";
import { test } from "./_harness.ts";
import { Child, type Runtime } from "./_proc.ts";
import { CacheError, SharedCache } from "../mod.ts";

const API_CHILD = fileURLToPath(new URL("./fixtures/api_child.ts", import.meta.url));

for (const { backend, make } of BACKENDS) {
  test(`increment (${backend}): counts from 0, by any finite amount, returning the new value`, () => {
    const { cache, dispose } = make();
    try {
      assert.equal(cache.increment("n"), 1);
      assert.equal(cache.increment("n"), 2);
      assert.equal(cache.increment("n", 10), 12);
      assert.equal(cache.increment("n", -2.5), 9.5);
      assert.equal(cache.get("n"), 9.5);
      cache.set("m", 41);
      assert.equal(cache.increment("m"), 42);
    } finally {
      dispose();
    }
  });

  test(`increment (${backend}): a non-number value is a TypeError and stays as it was`, () => {
    const { cache, dispose } = make();
    try {
      for (const value of ["5", { n: 1 }, null, true, [1]]) {
        cache.set("x", value);
        assert.throws(
          () => cache.increment("x"),
          (e: unknown) =>
            e instanceof TypeError && /not a number; nothing was changed/.test(e.message),
        );
        assert.deepEqual(cache.get("x"), value);
      }
      const bad = cache as unknown as { increment(...args: unknown[]): unknown };
      assert.throws(() => bad.increment("n", "1"), /by must be a number, got "1"/);
      assert.throws(() => bad.increment("n", NaN), RangeError);
      assert.throws(() => bad.increment("n", Infinity), RangeError);
      assert.throws(() => bad.increment("n", 1, { ttl: 5 }), /did you mean `ttlMs`/);
      assert.equal(cache.has("n"), false);
      cache.set("big", Number.MAX_VALUE);
      assert.throws(() => cache.increment("big", Number.MAX_VALUE), /not finite/);
      assert.equal(cache.get("big"), Number.MAX_VALUE);
    } finally {
      dispose();
    }
  });

  test(`increment (${backend}): ttlMs applies to a new counter; increments keep its expiry`, async () => {
    const { cache, dispose } = make();
    try {
      const created = performance.now();
      assert.equal(cache.increment("w", 1, { ttlMs: 1_500 }), 1);
      // A window that slid with each increment would now last 100 s.
      const second = cache.increment("w", 1, { ttlMs: 100_000 });
      // A machine too loaded to increment twice within 1.4 s cannot tell.
      if (performance.now() - created >= 1_400) return;
      assert.equal(second, 2);
      // Wait on the clock past the counter's own deadline.
      // Bound: 1.5 s from creation, plus one timer's lateness.
      while (performance.now() - created < 1_600) await sleep(50);
      assert.equal(cache.has("w"), false, "the increment extended the counter's window");
      assert.equal(cache.increment("w"), 1, "an expired counter starts again");
      // In a window of its own (the cache's ttlMs: none), not the passed one.
      assert.equal(cache.increment("w"), 2, "a restarted counter kept the passed expiry");
    } finally {
      dispose();
    }
  });

  test(`keys and entries (${backend}): live entries only, each once, byte keys as bytes`, async () => {
    const { cache, dispose } = make();
    try {
      cache.set("a", 1);
      cache.set("b", { two: [2] });
      cache.set(new Uint8Array([1, 2, 3]), "bytes");
      cache.set("gone", 0);
      cache.delete("gone");
      cache.set("short", 0, { ttlMs: 10 });
      await sleep(30);
      const entries = [...cache.entries()];
      const byKey = new Map(
        entries.map(([k, v]) => [typeof k === "string" ? k : `bytes:${[...k]}`, v]),
      );
      assert.equal(entries.length, 3, JSON.stringify([...byKey.keys()]));
      assert.deepEqual(
        byKey,
        new Map<string, unknown>([["a", 1], ["b", { two: [2] }], ["bytes:1,2,3", "bytes"]]),
      );
      const binary = entries.find(([k]) => typeof k !== "string")![0];
      assert.ok(binary instanceof Uint8Array);
      const keys = [...cache.keys()].map((k) => typeof k === "string" ? k : `bytes:${[...k]}`);
      assert.deepEqual(keys.sort(), ["a", "b", "bytes:1,2,3"]);
      cache.clear();
      assert.deepEqual([...cache.entries()], []);
    } finally {
      dispose();
    }
  });

  test(`keys (${backend}): writes during an iteration; untouched entries are seen once`, () => {
    const { cache, dispose } = make();
    try {
      for (let i = 0; i < 50; i++) cache.set(`k${i}`, i);
      const seen: string[] = [];
      for (const key of cache.keys()) {
        seen.push(key as string);
        if (seen.length === 10) {
          for (let i = 0; i < 10; i++) cache.delete(`k${i * 5 + 1}`);
          for (let i = 0; i < 10; i++) cache.set(`new${i}`, i);
        }
      }
      const untouched = Array.from({ length: 50 }, (_, i) => `k${i}`).filter((k) => cache.has(k));
      for (const key of untouched) {
        assert.equal(seen.filter((s) => s === key).length, 1, `${key} seen once`);
      }
    } finally {
      dispose();
    }
  });

  test(`getMany and setMany (${backend}): in order, with ttlMs; a refused entry stores nothing`, async () => {
    const { cache, dispose } = make();
    try {
      assert.equal(cache.setMany([["a", 1], ["b", "two"]]), 2);
      assert.equal(cache.setMany(new Map([["c", [3]]]), { ttlMs: 20 }), 1);
      assert.deepEqual(cache.getMany(["a", "b", "c", "none"]), [1, "two", [3], undefined]);
      await sleep(40);
      assert.deepEqual(cache.getMany(["c"]), [undefined]);
      const bad = cache as unknown as { setMany(...args: unknown[]): unknown };
      assert.throws(() => bad.setMany([["x", 1], ["y"]]), /\[key, value\] pair/);
      assert.throws(() => bad.setMany([["x", 1], [5, 1]]), TypeError);
      assert.throws(() => bad.setMany(5), /iterable/);
      assert.throws(() => bad.setMany([], { ttl: 1 }), /did you mean `ttlMs`/);
      assert.equal(cache.has("x"), false);
      assert.equal(cache.setMany([]), 0);
    } finally {
      dispose();
    }
  });
}

test("setMany (shared): a value over maxValueBytes refuses the whole batch", () => {
  const { cache, dispose } = scratch();
  try {
    assert.throws(
      () => cache.setMany([["ok", 1], ["big", "z".repeat(1000)]]),
      (e: unknown) => e instanceof RangeError && /nothing was stored/.test(e.message),
    );
    assert.equal(cache.has("ok"), false);
    assert.throws(() => cache.increment("k".repeat(100)), RangeError);
  } finally {
    dispose();
  }
});

test("increment and setMany (shared): refused while this process holds lock(), like set", () => {
  const { cache, dispose } = scratch();
  try {
    const tx = cache.lock();
    assert.throws(
      () => cache.increment("n"),
      (e: unknown) => e instanceof CacheError && e.code === "LockHeld",
    );
    assert.throws(
      () => cache.setMany([["a", 1]]),
      (e: unknown) => e instanceof CacheError && e.code === "LockHeld",
    );
    tx.release();
    assert.equal(cache.increment("n"), 1);
  } finally {
    dispose();
  }
});

test("entries (shared): a getOrSet claim is not listed", async () => {
  const { cache, dispose } = scratch();
  try {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => release = resolve);
    const running = cache.getOrSet("slow", async () => {
      await gate;
      return 1;
    });
    // The claim is written before the computation starts.
    await sleep(5);
    assert.ok(cache.size >= 1, "no claim was written");
    assert.deepEqual([...cache.keys()], []);
    release();
    assert.equal(await running, 1);
    assert.deepEqual([...cache.keys()], ["slow"]);
  } finally {
    dispose();
  }
});

// Across processes and runtimes.

const MIXED: Runtime[] = ["deno", "bun", "deno", "bun"];

async function startWorkers(
  space: { cache: SharedCache; name: string; dir: string },
  runtimes: Runtime[],
  args: string[],
): Promise<Child[]> {
  const workers = runtimes.map((runtime) =>
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

test("increment across Deno and Bun processes: no increment is lost", async () => {
  const space = scratch();
  let workers: Child[] = [];
  try {
    workers = await startWorkers(space, MIXED, ["increment", "hits", "300"]);
    let mine = 0;
    for (let i = 0; i < 300; i++) mine = space.cache.increment("hits");
    const lasts = await Promise.all(workers.map((w) => w.line("done ", 30_000)));
    assert.equal(space.cache.get("hits"), 1500);
    // Every value 1..1500 was returned to exactly one caller; the largest
    // returned is the total.
    const maxima = [mine, ...lasts.map((l) => Number(l.slice(5)))];
    assert.equal(Math.max(...maxima), 1500);
  } finally {
    await stopWorkers(workers);
    space.dispose();
  }
}, { timeoutMs: 60_000 });

test("entries while Deno and Bun processes overwrite every key: never a torn entry", async () => {
  const space = scratch();
  let workers: Child[] = [];
  try {
    for (let i = 0; i < 16; i++) space.cache.set(`c${i}`, { key: `c${i}`, n: -1, pad: "" });
    workers = await startWorkers(space, ["deno", "bun"], ["churn", "16", "1500"]);
    let rounds = 0;
    let checked = 0;
    // Bound: until both writers are done (they stop after 1.5 s).
    const done = Promise.all(workers.map((w) => w.line("done ", 30_000)));
    let finished = false;
    void done.then(() => finished = true);
    while (!finished) {
      const seen = new Set<string>();
      for (const [key, value] of space.cache.entries()) {
        if (key === "go") continue;
        const v = value as { key: string; n: number; pad: string };
        assert.equal(v.key, key, `entry ${String(key)} holds another key's value`);
        assert.equal(typeof v.n, "number");
        seen.add(key as string);
        checked++;
      }
      // Overwrites never remove a key: all sixteen are always there.
      assert.equal(seen.size, 16);
      rounds++;
      await sleep(0);
    }
    await done;
    assert.ok(rounds > 5, `only ${rounds} rounds`);
    assert.ok(checked > 80);
  } finally {
    await stopWorkers(workers);
    space.dispose();
  }
}, { timeoutMs: 60_000 });

test("keys (shared): a sparse region is walked in chunks to its last entry", () => {
  const dir = mkdtempSync(join(tmpdir(), "shm-api-"));
  const name = `api-sparse-${process.pid}`;
  const cache = SharedCache.open(name, { capacity: 5000, maxKeyBytes: 16, maxValueBytes: 16, dir });
  try {
    for (let i = 0; i < 4000; i++) cache.set(`k${i}`, i);
    for (let i = 0; i < 4000; i++) if (i !== 7 && i !== 3999) cache.delete(`k${i}`);
    assert.deepEqual([...cache.keys()].sort(), ["k3999", "k7"]);
    assert.deepEqual(new Map(cache.entries()), new Map([["k7", 7], ["k3999", 3999]]));
  } finally {
    cache.close();
    SharedCache.destroy(name, { dir });
    rmSync(dir, { recursive: true, force: true });
  }
});
