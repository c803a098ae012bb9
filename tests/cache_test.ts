import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CacheError, SharedCache, type SharedCacheOptions } from "../mod.ts";
import { pastDeadline } from "./_clock.ts";
import { test } from "./_harness.ts";

let seq = 0;
function withCache(
  options: Partial<SharedCacheOptions>,
  fn: (cache: SharedCache, dir: string, name: string) => void | Promise<void>,
) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "shmc-unit-"));
    const name = `unit-${process.pid}-${seq++}`;
    const cache = SharedCache.open(name, {
      capacity: 64,
      maxKeyBytes: 64,
      maxValueBytes: 1024,
      dir,
      ...options,
    });
    try {
      await fn(cache, dir, name);
    } finally {
      cache.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  "every value type round-trips",
  withCache({}, (cache) => {
    const values: Array<[string, unknown]> = [
      ["str", "hello"],
      ["empty", ""],
      ["unicode", "héllo wörld ✓ 🎉"],
      ["num", 42.5],
      ["negzero", -0],
      ["nan", NaN],
      ["inf", -Infinity],
      ["big", -123456789012345678901234567890n],
      ["t", true],
      ["f", false],
      ["null", null],
      ["undef", undefined],
      ["bytes", new Uint8Array([0, 1, 2, 255])],
      ["arr", [1, "two", { three: 3 }, null]],
      ["obj", { name: "Ada", tags: ["x"], nested: { ok: true } }],
    ];
    for (const [k, v] of values) cache.set(k, v);
    for (const [k, v] of values) {
      assert.ok(cache.has(k), `has(${k})`);
      assert.deepEqual(cache.get(k), v, `get(${k})`);
    }
    assert.ok(Object.is(cache.get("negzero"), -0));
    // A stored undefined or null is told apart from a miss through has().
    assert.equal(cache.get("missing"), undefined);
    assert.equal(cache.has("missing"), false);
    assert.equal(cache.has("undef"), true);
    // String and byte keys with the same bytes are different keys.
    cache.set(new Uint8Array([0x73, 0x74, 0x72]), "bytes-key");
    assert.equal(cache.get("str"), "hello");
    assert.equal(cache.get(new Uint8Array([0x73, 0x74, 0x72])), "bytes-key");
    // Returned bytes are a copy: mutating them does not change the cache.
    const b = cache.get("bytes") as Uint8Array;
    b[0] = 9;
    assert.deepEqual(cache.get("bytes"), new Uint8Array([0, 1, 2, 255]));
  }),
);

test(
  "add stores only where no live entry is",
  withCache({}, async (cache) => {
    assert.equal(cache.add("k", 1), true);
    assert.equal(cache.add("k", 2), false);
    assert.equal(cache.get("k"), 1);
    cache.set("short", "x", { ttlMs: 10 });
    await pastDeadline(performance.now(), 10);
    assert.equal(cache.add("short", "y"), true, "an expired entry counts as absent");
    assert.equal(cache.get("short"), "y");
    assert.equal(cache.stats().sets, 3);
  }),
);

test(
  "overwrite, delete, clear, size and stats",
  withCache({}, (cache) => {
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("a", 3);
    assert.equal(cache.get("a"), 3);
    assert.equal(cache.size, 2);
    assert.equal(cache.delete("a"), true);
    assert.equal(cache.delete("a"), false);
    assert.equal(cache.get("a"), undefined);
    assert.equal(cache.size, 1);
    cache.clear();
    assert.equal(cache.size, 0);
    assert.equal(cache.get("b"), undefined);
    cache.set("c", "again");
    assert.equal(cache.get("c"), "again");
    const s = cache.stats();
    assert.equal(s.sets, 4);
    assert.equal(s.deletes, 1);
    assert.equal(s.hits, 2);
    assert.equal(s.misses, 2);
    assert.equal(s.size, 1);
    assert.equal(s.capacity, 64);
    assert.deepEqual(cache.verify(), { ok: true, problems: [], repaired: false });
  }),
);

test(
  "capacity is respected and eviction keeps the cache consistent",
  withCache({ capacity: 10 }, (cache) => {
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, i);
    assert.equal(cache.size, 10);
    assert.equal(cache.stats().evictions, 90);
    let present = 0;
    for (let i = 0; i < 100; i++) if (cache.has(`k${i}`)) present++;
    assert.equal(present, 10);
    // The newest entry always survives its own insertion.
    assert.equal(cache.get("k99"), 99);
    assert.ok(cache.verify().ok);
  }),
);

test(
  "SIEVE evicts an unvisited entry before a visited one",
  withCache({ capacity: 4 }, (cache) => {
    for (const k of ["a", "b", "c", "d"]) cache.set(k, k);
    // Visit the oldest two (get is a use; has is not); c and d stay unvisited.
    cache.get("a");
    cache.get("b");
    cache.set("e", "e"); // evicts c: the hand passes a and b (clearing them) and stops at c
    assert.deepEqual(["a", "b", "c", "d", "e"].map((k) => cache.has(k)), [
      true,
      true,
      false,
      true,
      true,
    ]);
    cache.set("f", "f"); // next unvisited after the hand: d
    assert.deepEqual(["a", "b", "d", "e", "f"].map((k) => cache.has(k)), [
      true,
      true,
      false,
      true,
      true,
    ]);
    cache.get("e");
    // The hand continues toward the head: e is visited (cleared), f is not.
    cache.set("g", "g");
    assert.deepEqual(["a", "b", "e", "f", "g"].map((k) => cache.has(k)), [
      true,
      true,
      true,
      false,
      true,
    ]);
    // Past the head the hand wraps to the tail: a's bit was cleared by the first pass.
    cache.set("h", "h");
    assert.deepEqual(["a", "b", "e", "g", "h"].map((k) => cache.has(k)), [
      false,
      true,
      true,
      true,
      true,
    ]);
    assert.ok(cache.verify().ok);
  }),
);

test(
  "TTL: the cache default and a per-entry override",
  withCache({ ttlMs: 60 }, async (cache) => {
    // Each entry must be gone once its own TTL has passed since its set
    // returned (a TTL taken too long is caught); "long" and "forever" must
    // still be there (60 s is far beyond any stall of this test).
    cache.set("short", 2, { ttlMs: 20 });
    const shortSet = performance.now();
    cache.set("default", 1);
    const defaultSet = performance.now();
    cache.set("forever", 3, { ttlMs: Infinity });
    cache.set("long", 4, { ttlMs: 60_000 });
    await pastDeadline(shortSet, 20);
    assert.equal(cache.get("short"), undefined, "the entry outlived its 20 ms TTL");
    assert.equal(cache.has("short"), false);
    await pastDeadline(defaultSet, 60);
    assert.equal(cache.get("default"), undefined, "the entry outlived the cache's 60 ms TTL");
    assert.equal(cache.get("forever"), 3);
    assert.equal(cache.get("long"), 4);
    // Expired entries are reclaimed first when room is needed, and counted.
    assert.throws(() => cache.set("x", 1, { ttlMs: 0 }), RangeError);
    assert.throws(() => cache.set("x", 1, { ttlMs: -5 }), /ttlMs must be a positive number/);
  }),
);

test(
  "expired entries are evicted before live ones and counted",
  withCache({ capacity: 3 }, async (cache) => {
    cache.set("old", 1, { ttlMs: 10 });
    const oldSet = performance.now();
    cache.set("a", 2);
    cache.set("b", 3);
    cache.get("a");
    await pastDeadline(oldSet, 10);
    cache.set("c", 4);
    assert.equal(cache.stats().expirations, 1);
    assert.equal(cache.stats().evictions, 0);
    assert.deepEqual(["a", "b", "c"].map((k) => cache.get(k)), [2, 3, 4]);
  }),
);

test(
  "the lock guard releases when the block throws",
  withCache({}, (cache, dir, name) => {
    assert.throws(() => {
      using tx = cache.lock();
      tx.set("inside", 1);
      throw new Error("boom");
    }, /boom/);
    // Released: another handle (same process) can write and lock.
    const other = SharedCache.open(name, {
      capacity: 64,
      maxKeyBytes: 64,
      maxValueBytes: 1024,
      dir,
      lockTimeoutMs: 100,
    });
    try {
      other.set("after", 2);
      assert.equal(other.get("inside"), 1);
      using tx2 = other.lock();
      tx2.set("x", 3);
    } finally {
      other.close();
    }
    assert.equal(cache.get("x"), 3);
    assert.equal(cache.stats().lockTimeouts, 0);
  }),
);

test(
  "set while this process holds the lock throws instead of deadlocking",
  withCache({}, (cache, dir, name) => {
    const tx = cache.lock();
    try {
      assert.throws(
        () => cache.set("a", 1),
        (e: unknown) => e instanceof CacheError && e.code === "LockHeld",
      );
      assert.throws(
        () => cache.delete("a"),
        (e: unknown) => e instanceof CacheError && e.code === "LockHeld",
      );
      assert.throws(
        () => cache.lock(),
        (e: unknown) => e instanceof CacheError && e.code === "LockHeld",
      );
      // Another handle of the same cache in this process is refused too.
      const other = SharedCache.open(name, {
        capacity: 64,
        maxKeyBytes: 64,
        maxValueBytes: 1024,
        dir,
      });
      try {
        assert.throws(
          () => other.set("a", 1),
          (e: unknown) => e instanceof CacheError && e.code === "LockHeld",
        );
      } finally {
        other.close();
      }
      // Also when the directory is spelled differently: the file is the same.
      const spelled = SharedCache.open(name, {
        capacity: 64,
        maxKeyBytes: 64,
        maxValueBytes: 1024,
        dir: dir + "/./",
      });
      try {
        assert.throws(
          () => spelled.set("a", 1),
          (e: unknown) => e instanceof CacheError && e.code === "LockHeld",
        );
      } finally {
        spelled.close();
      }
      // A different cache is not affected by this one's lock.
      const unrelated = SharedCache.open(`${name}-other`, {
        capacity: 8,
        maxKeyBytes: 16,
        maxValueBytes: 16,
        dir,
      });
      try {
        unrelated.set("free", 1);
        assert.equal(unrelated.get("free"), 1);
        unrelated.lock().release();
      } finally {
        unrelated.close();
      }
      // Reads need no lock.
      tx.set("a", 1);
      assert.equal(cache.get("a"), 1);
      assert.equal(tx.get("a"), 1);
      assert.equal(tx.delete("a"), true);
    } finally {
      tx.release();
    }
    tx.release(); // idempotent
    assert.throws(
      () => tx.set("b", 1),
      (e: unknown) => e instanceof CacheError && e.code === "NotLocked",
    );
    cache.set("b", 2);
    assert.equal(cache.get("b"), 2);
  }),
);

test(
  "close is idempotent and a closed cache throws Closed",
  withCache({}, (cache) => {
    cache.set("a", 1);
    cache.close();
    cache.close();
    assert.equal(cache.closed, true);
    assert.throws(
      () => cache.get("a"),
      (e: unknown) => e instanceof CacheError && e.code === "Closed",
    );
    assert.throws(
      () => cache.set("a", 2),
      (e: unknown) => e instanceof CacheError && e.code === "Closed",
    );
  }),
);

test("`using` closes the cache", () => {
  const dir = mkdtempSync(join(tmpdir(), "shmc-unit-"));
  let ref: SharedCache;
  {
    using cache = SharedCache.open("using-test", {
      capacity: 4,
      maxKeyBytes: 8,
      maxValueBytes: 8,
      dir,
    });
    ref = cache;
    cache.set("a", 1);
  }
  assert.equal(ref.closed, true);
  SharedCache.destroy("using-test", { dir });
  rmSync(dir, { recursive: true, force: true });
});

test(
  "a Uint8Array read is the caller's own copy: later reads and writes leave it as it was",
  withCache({}, (cache) => {
    cache.set("a", new Uint8Array([1, 2, 3]));
    cache.set("b", new Uint8Array([9, 9, 9, 9, 9]));
    const a = cache.get("a") as Uint8Array;
    const b = cache.get("b") as Uint8Array;
    // A view of the handle's value buffer would now show b's bytes.
    assert.deepEqual([...a], [1, 2, 3]);
    assert.deepEqual([...b], [9, 9, 9, 9, 9]);
    assert.notEqual(a.buffer, b.buffer);
    a[0] = 42;
    assert.deepEqual(
      [...(cache.get("a") as Uint8Array)],
      [1, 2, 3],
      "the caller's edit reached the cache",
    );
    cache.set("a", new Uint8Array([7]));
    assert.deepEqual([...a], [42, 2, 3]);
  }),
);

test(
  "objects with text beyond Latin-1 round-trip exactly",
  withCache({}, (cache) => {
    const value = { name: "Zoë 東京 🚀", list: ["é", "\u2028", "𝄞"] };
    cache.set("u", value);
    assert.deepEqual(cache.get("u"), value);
    cache.set("s", "naïve ☃");
    assert.equal(cache.get("s"), "naïve ☃");
  }),
);
