/**
 * `@std/cache`'s `memoize` over MemoryCache and SharedCache (issue 11: over
 * a SharedCache it stored async results as `{}`). No JSR here, and its
 * source is not vendored: `stdMemoize` below re-implements its documented
 * calling pattern (read from its source, cache/memoize.ts), which is all a
 * cache sees of it:
 *
 * - a hit is `cache.get(key) !== undefined`, a record
 *   `{ kind: "ok" | "promise", value }` (or `{ kind: "error", error }`);
 * - a sync result is stored as `cache.set(key, { kind: "ok", value })`;
 * - a promise is stored at once as `cache.set(key, { kind: "promise", value: p })`,
 *   where `p` deletes the key when it rejects;
 * - earlier releases stored the bare result (or promise) and tested `has`:
 *   that pattern works over MemoryCache, and over SharedCache for sync
 *   functions only (a bare promise is not storable: a TypeError).
 */
// deno-lint-ignore-file require-await
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "./_harness.ts";
import { MemoryCache, SharedCache } from "../mod.ts";

/** The `MemoizationCache` shape of @std/cache. */
interface MemoizationCache<K, V> {
  has(key: K): boolean;
  get(key: K): V | undefined;
  set(key: K, value: V): unknown;
  delete(key: K): unknown;
}

type Result =
  | { kind: "ok"; value: unknown }
  | { kind: "promise"; value: unknown }
  | { kind: "error"; error: unknown };

/** @std/cache's memoize (current): records of `Result` under string keys. */
function stdMemoize<A extends unknown[], R>(
  fn: (...args: A) => R,
  cache: MemoizationCache<string, Result>,
): (...args: A) => R {
  return (...args: A): R => {
    const key = JSON.stringify(args);
    const cached = cache.get(key);
    if (cached !== undefined) {
      if (cached.kind === "error") throw cached.error;
      return cached.value as R;
    }
    let value = fn(...args);
    if (value instanceof Promise) {
      value = value.catch((reason) => {
        cache.delete(key);
        throw reason;
      }) as R;
      cache.set(key, { kind: "promise", value });
    } else {
      cache.set(key, { kind: "ok", value });
    }
    return value;
  };
}

/** @std/cache's memoize (earlier releases): the bare result or promise, tested with `has`. */
function stdMemoizeLegacy<A extends unknown[], R>(
  fn: (...args: A) => R,
  cache: MemoizationCache<string, unknown>,
): (...args: A) => R {
  return (...args: A): R => {
    const key = JSON.stringify(args);
    if (cache.has(key)) return cache.get(key) as R;
    let value = fn(...args);
    if (value instanceof Promise) {
      value = value.catch((reason) => {
        cache.delete(key);
        throw reason;
      }) as R;
    }
    cache.set(key, value);
    return value;
  };
}

let serial = 0;

function scratch(): { cache: SharedCache; open(): SharedCache; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), "shm-std-"));
  const name = `std-${process.pid}-${++serial}`;
  const opened: SharedCache[] = [];
  const open = () => {
    const cache = SharedCache.open(name, {
      capacity: 64,
      maxKeyBytes: 64,
      maxValueBytes: 512,
      dir,
    });
    opened.push(cache);
    return cache;
  };
  return {
    cache: open(),
    open,
    dispose() {
      for (const cache of opened) cache.close();
      SharedCache.destroy(name, { dir });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const BACKENDS = [
  {
    backend: "memory",
    make: () => {
      const cache = new MemoryCache();
      return { cache, open: () => cache, dispose: () => cache.close() };
    },
  },
  { backend: "shared", make: scratch },
];

const PATTERNS = [
  { pattern: "current", memo: stdMemoize },
  { pattern: "legacy", memo: stdMemoizeLegacy },
] as const;

for (const { backend, make } of BACKENDS) {
  for (const { pattern, memo } of PATTERNS) {
    test(`@std/cache memoize (${pattern}) over ${backend}: sync results`, () => {
      const { cache, dispose } = make();
      try {
        let calls = 0;
        const square = memo((n: number) => {
          calls++;
          return { n, square: n * n };
        }, cache as MemoizationCache<string, never>);
        assert.deepEqual(square(3), { n: 3, square: 9 });
        assert.deepEqual(square(3), { n: 3, square: 9 });
        assert.equal(calls, 1);
      } finally {
        dispose();
      }
    });

    if (pattern === "legacy" && backend === "shared") continue;
    test(`@std/cache memoize (${pattern}) over ${backend}: async results are values, not {}`, async () => {
      const { cache, open, dispose } = make();
      try {
        let calls = 0;
        const load = async (id: number) => {
          calls++;
          await new Promise((resolve) => setTimeout(resolve, 5));
          return { id, name: `user ${id}` };
        };
        const user = memo(load, cache as MemoizationCache<string, never>);
        const first = user(1);
        const joined = user(1); // while pending: the same promise
        assert.deepEqual(await first, { id: 1, name: "user 1" });
        assert.deepEqual(await joined, { id: 1, name: "user 1" });
        assert.deepEqual(await user(1), { id: 1, name: "user 1" });
        assert.equal(calls, 1);
        // Another handle (another process) sees the settled value, stored
        // by the promise's own callbacks: all have run once a macrotask
        // (a timer) runs, since microtasks always run first.
        await new Promise((resolve) => setTimeout(resolve, 0));
        const other = memo(load, open() as MemoizationCache<string, never>);
        assert.deepEqual(await other(1), { id: 1, name: "user 1" });
        assert.equal(calls, 1);
        // A rejection is not cached.
        let attempts = 0;
        const flaky = memo(async (n: number) => {
          if (++attempts === 1) throw new Error("first fails");
          return n;
        }, cache as MemoizationCache<string, never>);
        await assert.rejects(flaky(7), /first fails/);
        await new Promise((resolve) => setTimeout(resolve, 1));
        assert.equal(await flaky(7), 7);
      } finally {
        dispose();
      }
    });
  }
}

test("SharedCache.set of @std/cache's promise record: read back at once, stored with the result", async () => {
  const { cache, open, dispose } = scratch();
  try {
    const other = open();
    let resolve!: (v: number) => void;
    const record = { kind: "promise" as const, value: new Promise<number>((r) => resolve = r) };
    cache.set("p", record);
    assert.equal(cache.get("p"), record);
    assert.equal(cache.has("p"), true);
    assert.equal(other.has("p"), false, "another handle sees nothing until it resolves");
    resolve(42);
    await record.value;
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(cache.get("p"), { kind: "promise", value: 42 });
    assert.deepEqual(other.get("p"), { kind: "promise", value: 42 });
    // A later write wins over a waiting record; a rejection stores nothing.
    let late!: (v: string) => void;
    cache.set("q", { kind: "promise", value: new Promise<string>((r) => late = r) });
    cache.set("q", "newer");
    late("older");
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(other.get("q"), "newer");
    const failing = Promise.reject(new Error("no"));
    failing.catch(() => {});
    cache.set("r", { kind: "promise", value: failing });
    assert.equal(cache.has("r"), true);
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(cache.has("r"), false);
    cache.set("d", { kind: "promise", value: Promise.resolve(1) });
    assert.equal(cache.delete("d"), true);
    assert.equal(cache.has("d"), false);
    // Promises anywhere else are the codec's TypeError (issue 11, point 1).
    for (
      const value of [
        Promise.resolve(1),
        { p: Promise.resolve(1) },
        { kind: "promise", value: Promise.resolve(1), x: 1 },
        [Promise.resolve(1)],
      ]
    ) {
      assert.throws(() => cache.set("t", value), TypeError);
    }
    assert.throws(
      () => cache.set(new Uint8Array([1]), { kind: "promise", value: Promise.resolve(1) }),
      TypeError,
    );
    assert.equal(cache.has("t"), false);
  } finally {
    dispose();
  }
});
