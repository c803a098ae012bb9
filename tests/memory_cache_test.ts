/**
 * Tests of MemoryCache: the SharedCache API in process memory, SIEVE
 * eviction, TTL, Uint8Array keys, validation and disposal.
 */
import assert from "node:assert/strict";
import { pastDeadline } from "./_clock.ts";
import { test } from "./_harness.ts";
import { MemoryCache } from "../lib/memory_cache.ts";
import { CacheError } from "../lib/errors.ts";

test("MemoryCache: get, set, has, delete, size and stats", () => {
  const cache = new MemoryCache<number>({ capacity: 10 });
  assert.equal(cache.get("a"), undefined);
  cache.set("a", 1);
  cache.set("b", 2);
  assert.equal(cache.get("a"), 1);
  assert.equal(cache.has("b"), true);
  assert.equal(cache.has("c"), false);
  assert.equal(cache.size, 2);
  assert.equal(cache.delete("a"), true);
  assert.equal(cache.delete("a"), false);
  assert.equal(cache.size, 1);
  cache.set("b", 3);
  assert.equal(cache.get("b"), 3);
  assert.deepEqual(cache.stats(), {
    hits: 2,
    misses: 1,
    sets: 3,
    deletes: 1,
    evictions: 0,
    expirations: 0,
    unstoredResults: 0,
    size: 1,
    capacity: 10,
  });
});

test("MemoryCache: values are stored as they are, undefined included", () => {
  const cache = new MemoryCache();
  const value = { nested: [1, 2], fn: () => 1, map: new Map([[1, 2]]) };
  cache.set("v", value);
  assert.equal(cache.get("v"), value);
  cache.set("u", undefined);
  assert.equal(cache.has("u"), true);
  assert.equal(cache.get("u"), undefined);
});

test("MemoryCache: Uint8Array keys are compared by content", () => {
  const cache = new MemoryCache<string>();
  cache.set(new Uint8Array([1, 2, 3]), "bytes");
  assert.equal(cache.get(new Uint8Array([1, 2, 3])), "bytes");
  assert.equal(cache.get(new Uint8Array([1, 2])), undefined);
  // A view into a larger buffer is compared by the bytes it shows.
  const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
  assert.equal(cache.get(view), "bytes");
  assert.equal(cache.delete(view), true);
  assert.equal(cache.size, 0);
});

test("MemoryCache: a byte key never equals a string key, as in SharedCache", () => {
  const cache = new MemoryCache<string>();
  cache.set("héllo", "string");
  assert.equal(cache.get(new TextEncoder().encode("héllo")), undefined);
  cache.set(new TextEncoder().encode("héllo"), "bytes");
  cache.set(new Uint8Array([0xff]), "invalid UTF-8");
  cache.set("\u00ff", "latin1");
  assert.equal(cache.get("héllo"), "string");
  assert.equal(cache.get(new TextEncoder().encode("héllo")), "bytes");
  assert.equal(cache.get(new Uint8Array([0xff])), "invalid UTF-8");
  assert.equal(cache.get("\u00ff"), "latin1");
  assert.equal(cache.size, 4);
  assert.equal(cache.delete(new Uint8Array([0xff])), true);
  assert.equal(cache.has("\u00ff"), true);
  cache.clear();
  assert.equal(cache.get(new TextEncoder().encode("héllo")), undefined);
});

test("MemoryCache: SIEVE evicts the oldest unvisited entry and the hand stays where it stopped", () => {
  const cache = new MemoryCache<number>({ capacity: 3 });
  cache.set("a", 1);
  cache.set("b", 2);
  cache.set("c", 3);
  cache.get("a"); // visited: survives the next eviction
  cache.set("d", 4); // the hand clears a, evicts b
  assert.deepEqual(["a", "b", "c", "d"].map((k) => cache.has(k)), [true, false, true, true]);
  cache.set("e", 5); // the hand moved on from b's place to c: evicts c, not a
  assert.deepEqual(["a", "c", "d", "e"].map((k) => cache.has(k)), [true, false, true, true]);
  cache.set("f", 6); // then d: the hand moves towards newer entries
  assert.deepEqual(["a", "d", "e", "f"].map((k) => cache.has(k)), [true, false, true, true]);
  cache.get("e");
  cache.get("f");
  cache.set("g", 7); // the hand clears e and f, wraps around to the oldest, a, and evicts it
  assert.deepEqual(["a", "e", "f", "g"].map((k) => cache.has(k)), [false, true, true, true]);
  cache.set("h", 8); // the hand restarts from the oldest: e, now unvisited
  assert.deepEqual(["e", "f", "g", "h"].map((k) => cache.has(k)), [false, true, true, true]);
  assert.equal(cache.stats().evictions, 5);
  assert.equal(cache.size, 3);
});

test("MemoryCache: when every entry is visited, one eviction still happens", () => {
  const cache = new MemoryCache<number>({ capacity: 3 });
  for (const key of ["a", "b", "c"]) cache.set(key, 0);
  for (const key of ["a", "b", "c"]) cache.get(key);
  cache.set("d", 0); // clears a, b, c, wraps to a and evicts it
  assert.deepEqual(["a", "b", "c", "d"].map((k) => cache.has(k)), [false, true, true, true]);
});

test("MemoryCache: a hot set of keys survives a scan (SIEVE is scan-resistant)", () => {
  const cache = new MemoryCache<number>({ capacity: 100 });
  for (let i = 0; i < 10; i++) cache.set(`hot${i}`, i);
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 10; i++) assert.equal(cache.get(`hot${i}`), i);
    for (let i = 0; i < 50; i++) cache.set(`scan${round}-${i}`, i);
  }
  for (let i = 0; i < 10; i++) assert.equal(cache.has(`hot${i}`), true, `hot${i} was evicted`);
  assert.equal(cache.size, 100);
});

test("MemoryCache: random churn keeps size within capacity and never loses a fresh set", () => {
  const cache = new MemoryCache<number>({ capacity: 64 });
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 20_000; i++) {
    const key = `k${Math.floor(random() * 200)}`;
    const op = random();
    if (op < 0.5) {
      cache.set(key, i);
      assert.equal(cache.get(key), i);
    } else if (op < 0.9) {
      cache.get(key);
    } else {
      cache.delete(key);
    }
    assert.ok(cache.size <= 64, `size ${cache.size} exceeds the capacity`);
  }
});

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let time = 1_000;
  return { now: () => time, advance: (ms) => void (time += ms) };
}

test("MemoryCache: entries expire after the cache's ttlMs or their own", () => {
  const clock = manualClock();
  const cache = new MemoryCache<string>({ ttlMs: 40, clock: clock.now });
  cache.set("default", "x");
  cache.set("short", "x", { ttlMs: 10 });
  cache.set("forever", "x", { ttlMs: Infinity });
  clock.advance(9);
  assert.equal(cache.get("short"), "x", "expired before its ttlMs");
  clock.advance(1);
  assert.equal(cache.get("short"), undefined, "outlived its ttlMs");
  clock.advance(29);
  assert.equal(cache.get("default"), "x", "expired before the cache's ttlMs");
  clock.advance(1);
  assert.equal(cache.has("default"), false, "outlived the cache's ttlMs");
  assert.equal(cache.get("forever"), "x");
  assert.equal(cache.stats().expirations, 2);
  assert.equal(cache.size, 1);
});

test("MemoryCache: set renews an entry's time to live", () => {
  const clock = manualClock();
  const cache = new MemoryCache<number>({ ttlMs: 40, clock: clock.now });
  cache.set("k", 1);
  clock.advance(25);
  cache.set("k", 2);
  clock.advance(39);
  assert.equal(cache.get("k"), 2);
  clock.advance(1);
  assert.equal(cache.get("k"), undefined);
});

test("MemoryCache: the default clock is the monotonic one; a clock that is not a function is a TypeError", async () => {
  const cache = new MemoryCache<number>();
  cache.set("k", 1, { ttlMs: 5 });
  const setAt = performance.now();
  await pastDeadline(setAt, 5);
  assert.equal(cache.get("k"), undefined);
  assert.throws(() => new MemoryCache({ clock: 5 as unknown as () => number }), {
    name: "TypeError",
    message: "MemoryCache clock must be a function, got 5",
  });
});

test("MemoryCache: the eviction hand removes an expired entry it meets, as an expiration", () => {
  const clock = manualClock();
  const cache = new MemoryCache<number>({ capacity: 2, clock: clock.now });
  cache.set("live", 1);
  cache.set("brief", 2, { ttlMs: 5 });
  cache.get("live"); // visited: the hand passes it
  clock.advance(5);
  cache.set("new", 3); // the hand clears live, then meets brief, expired
  assert.deepEqual(["live", "brief", "new"].map((k) => cache.has(k)), [true, false, true]);
  assert.equal(cache.stats().expirations, 1);
  assert.equal(cache.stats().evictions, 0);
});

test("MemoryCache: options are validated with messages that name the option and the value", () => {
  assert.throws(() => new MemoryCache({ capacity: 0 }), {
    name: "RangeError",
    message: "MemoryCache capacity must be a positive integer, got 0",
  });
  assert.throws(() => new MemoryCache({ maxSize: 1.5 }), {
    name: "RangeError",
    message: "MemoryCache maxSize must be a positive integer, got 1.5",
  });
  assert.throws(() => new MemoryCache({ capacity: 2, maxSize: 3 }), RangeError);
  assert.throws(() => new MemoryCache({ ttlMs: -1 }), {
    name: "RangeError",
    message: "MemoryCache ttlMs must be a positive number of milliseconds, got -1",
  });
  assert.throws(() => new MemoryCache({ ttlMs: Number.NaN }), /got NaN/);
  assert.throws(() => new MemoryCache(null as never), TypeError);
  const cache = new MemoryCache();
  assert.throws(() => cache.set("k", 1, { ttlMs: 0 }), {
    name: "RangeError",
    message: "MemoryCache.set ttlMs must be a positive number of milliseconds, got 0",
  });
  assert.throws(() => cache.get(42 as never), {
    name: "TypeError",
    message: "MemoryCache key must be a string or Uint8Array, got 42",
  });
  assert.equal(new MemoryCache({ maxSize: 7 }).stats().capacity, 7);
  assert.equal(new MemoryCache().stats().capacity, 1000);
});

test("MemoryCache: close is idempotent, later use throws CacheError Closed, using disposes", () => {
  const cache = new MemoryCache();
  cache.set("a", 1);
  cache.close();
  cache.close();
  assert.equal(cache.size, 0);
  assert.throws(
    () => cache.get("a"),
    (e: unknown) => e instanceof CacheError && e.code === "Closed",
  );
  assert.throws(
    () => cache.set("a", 1),
    (e: unknown) => e instanceof CacheError && e.code === "Closed",
  );
  assert.throws(() => cache.has("a"), CacheError);
  assert.throws(() => cache.delete("a"), CacheError);
  assert.throws(() => cache.clear(), CacheError);
  assert.equal(cache.stats().size, 0);

  let outer: MemoryCache | undefined;
  {
    using scoped = new MemoryCache();
    scoped.set("a", 1);
    outer = scoped;
  }
  assert.throws(() => outer.get("a"), CacheError);
});

/** The `MemoizationCache` interface of `@std/cache`, copied here (no JSR access in tests). */
interface MemoizationCache<K, V> {
  has: (key: K) => boolean;
  get: (key: K) => V | undefined;
  set: (key: K, val: V) => unknown;
  delete: (key: K) => unknown;
}

test("MemoryCache: satisfies @std/cache's MemoizationCache shape", () => {
  const useIt = (cache: MemoizationCache<string, number>) => {
    cache.set("x", 1);
    return [cache.has("x"), cache.get("x"), cache.delete("x"), cache.has("x")];
  };
  assert.deepEqual(useIt(new MemoryCache<number>()), [true, 1, true, false]);
});
