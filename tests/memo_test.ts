/**
 * The decode memo of `SharedCache` (`decodeCacheBytes`): a repeated hit on
 * an unchanged entry returns the string decoded before, and a write by any
 * handle is seen at once. Two handles on one region stand for two
 * processes: each has its own memo and its own native handle, and they
 * share only the mapped file, as processes do.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SharedCache, type SharedCacheOptions } from "../mod.ts";
import { pastDeadline } from "./_clock.ts";
import { test } from "./_harness.ts";

let seq = 0;

/** Opens `count` handles on one fresh cache, runs `fn`, closes and removes everything. */
function withHandles(
  count: number,
  options: Partial<SharedCacheOptions>,
  fn: (handles: SharedCache[]) => void | Promise<void>,
) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "shmc-memo-"));
    const name = `memo-${process.pid}-${seq++}`;
    const handles: SharedCache[] = [];
    try {
      for (let i = 0; i < count; i++) {
        handles.push(SharedCache.open(name, {
          capacity: 16,
          maxKeyBytes: 32,
          maxValueBytes: 2048,
          dir,
          ...options,
        }));
      }
      await fn(handles);
    } finally {
      for (const h of handles) h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  "a repeated hit comes from the memo, and another handle's write is seen at once",
  withHandles(2, {}, ([reader, writer]) => {
    writer.set("k", "first");
    assert.equal(reader.get("k"), "first");
    assert.equal(reader.stats().memoHits, 0);
    assert.equal(reader.get("k"), "first");
    assert.equal(reader.stats().memoHits, 1);

    writer.set("k", "second");
    assert.equal(reader.get("k"), "second");
    assert.equal(reader.stats().memoHits, 1, "a new write is decoded, not served from the memo");
    assert.equal(reader.get("k"), "second");
    assert.equal(reader.stats().memoHits, 2);

    // The same bytes written again are a new write: decoded again.
    writer.set("k", "second");
    assert.equal(reader.get("k"), "second");
    assert.equal(reader.stats().memoHits, 2);

    writer.delete("k");
    assert.equal(reader.get("k"), undefined);
    assert.equal(reader.has("k"), false);
    writer.set("k", 7);
    assert.equal(reader.get("k"), 7);
    assert.equal(reader.stats().hits, 6);
  }),
);

test(
  "a key crafted against the hash does not make the memo serve an old value",
  // Bytes 8..15 equal one of Wyhash's public constants, which zeroes
  // Wyhash's state; the memo must still tell the two writes apart.
  withHandles(2, {}, ([writer, reader]) => {
    const key = new Uint8Array(16);
    new DataView(key.buffer).setBigUint64(8, 0xe7037ed1a0b428dbn, true);
    writer.set(key, "active!");
    assert.equal(reader.get(key), "active!");
    assert.equal(reader.get(key), "active!");
    assert.equal(reader.stats().memoHits, 1);
    writer.set(key, "banned!");
    assert.equal(reader.get(key), "banned!");
  }),
);

test(
  "slots reused by other keys never answer with another key's value",
  // A tiny memo (2 entries) over a tiny cache (16 slots) with 60 keys:
  // slots are evicted and reused all the time, and memo entries alias.
  withHandles(2, { decodeCacheBytes: 128 }, ([a, b]) => {
    const model = new Map<string, string>();
    let state = 12345;
    const random = (n: number) => {
      // xorshift32
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % n;
    };
    for (let step = 0; step < 20_000; step++) {
      const key = `key-${random(60)}`;
      const op = random(10);
      if (op < 3) {
        const value = `v-${key}-${step}`;
        (op === 0 ? a : b).set(key, value);
        model.set(key, value);
      } else if (op === 3) {
        b.delete(key);
        model.delete(key);
      } else {
        const got = a.get(key);
        // Eviction may drop an entry, never change one.
        if (got !== undefined) assert.equal(got, model.get(key), `step ${step}, ${key}`);
      }
    }
    const stats = a.stats();
    assert.ok(stats.memoHits > 100, `the memo was exercised (${stats.memoHits} memo hits)`);
    assert.ok(stats.evictions > 100, `slots were reused (${stats.evictions} evictions)`);
  }),
);

test(
  "reads inside a lock guard see the guard's own writes",
  withHandles(1, {}, ([cache]) => {
    cache.set("k", "before");
    assert.equal(cache.get("k"), "before");
    assert.equal(cache.get("k"), "before");
    {
      using tx = cache.lock();
      tx.set("k", "during");
      assert.equal(tx.get("k"), "during");
      assert.equal(tx.get("k"), "during");
      tx.set("k", "again");
      assert.equal(tx.get("k"), "again");
    }
    assert.equal(cache.get("k"), "again");
  }),
);

test(
  "an expired entry is not served from the memo",
  withHandles(1, {}, async ([cache]) => {
    cache.set("k", "short-lived", { ttlMs: 30 });
    const setAt = performance.now();
    assert.equal(cache.get("k"), "short-lived");
    assert.equal(cache.get("k"), "short-lived");
    assert.equal(cache.stats().memoHits, 1);
    await pastDeadline(setAt, 30);
    assert.equal(cache.get("k"), undefined, "the memo served an expired entry");
    assert.equal(cache.has("k"), false);
  }),
);

test(
  "objects, bytes and long strings are fresh on every hit; the memo keeps none of them",
  withHandles(1, {}, ([cache]) => {
    cache.set("obj", { n: 1, list: [1, 2] });
    const o1 = cache.get("obj") as { n: number; list: number[] };
    o1.n = 99;
    o1.list.push(3);
    assert.deepEqual(cache.get("obj"), { n: 1, list: [1, 2] });

    cache.set("bytes", new Uint8Array([1, 2, 3]));
    const b1 = cache.get("bytes") as Uint8Array;
    b1[0] = 42;
    assert.deepEqual(cache.get("bytes"), new Uint8Array([1, 2, 3]));
    assert.equal(Object.getPrototypeOf(b1), Uint8Array.prototype);

    const long = "x".repeat(512); // 513 bytes with the tag: the largest kept
    const longer = "y".repeat(513);
    cache.set("long", long);
    cache.set("longer", longer);
    for (let i = 0; i < 3; i++) {
      assert.equal(cache.get("long"), long);
      assert.equal(cache.get("longer"), longer);
    }
    assert.equal(cache.stats().memoHits, 2, "only the 512-byte string was served from the memo");
  }),
);

test(
  "the memo keeps within its byte budget and still takes new entries",
  // 1024 bytes: 16 entries, room for 5 strings of 200 bytes at a time.
  withHandles(1, { decodeCacheBytes: 1024, capacity: 64 }, ([cache]) => {
    const cold = Array.from({ length: 8 }, (_, i) => String(i).repeat(200));
    cold.forEach((v, i) => cache.set(`cold${i}`, v));
    cache.set("hot", "h".repeat(200));
    // Cold strings read once fill the budget, and more.
    cold.forEach((v, i) => assert.equal(cache.get(`cold${i}`), v));
    for (let i = 0; i < 1000; i++) assert.equal(cache.get("hot"), "h".repeat(200));
    assert.ok(cache.stats().memoHits >= 999, `hot key memo hits: ${cache.stats().memoHits}`);
    // A value that grows past the per-string limit leaves the memo, and
    // one that shrinks back enters it again.
    cache.set("hot", "h".repeat(600));
    const before = cache.stats().memoHits;
    for (let i = 0; i < 3; i++) assert.equal(cache.get("hot"), "h".repeat(600));
    assert.equal(cache.stats().memoHits, before);
    cache.set("hot", "small");
    for (let i = 0; i < 3; i++) assert.equal(cache.get("hot"), "small");
    assert.equal(cache.stats().memoHits, before + 2);
  }),
);

test(
  "budgets smaller than a string never hang a get",
  async () => {
    for (const budget of [1, 2, 63, 64, 65, 100, 500, 513]) {
      await withHandles(1, { decodeCacheBytes: budget }, ([cache]) => {
        for (const value of ["x", "y".repeat(100), "z".repeat(512)]) {
          cache.set("k", value);
          for (let i = 0; i < 3; i++) assert.equal(cache.get("k"), value);
        }
        const fits = ["x", "y".repeat(100), "z".repeat(512)]
          .filter((v) => v.length + 1 <= budget).length;
        assert.equal(cache.stats().memoHits, 2 * fits, `budget ${budget}`);
      })();
    }
  },
  { timeoutMs: 20_000 },
);

test(
  "a toJSON that closes or locks the cache makes the set throw, not crash",
  withHandles(1, {}, ([cache]) => {
    let guard: { release(): void } | undefined;
    const locking = {
      toJSON() {
        guard = cache.lock();
        return { a: 1 };
      },
    };
    assert.throws(
      () => cache.set("k", locking),
      (e: unknown) => (e as { code?: string }).code === "LockHeld",
    );
    guard!.release();
    const closing = {
      toJSON() {
        cache.close();
        return { a: 1 };
      },
    };
    assert.throws(
      () => cache.set("k", closing),
      (e: unknown) => (e as { code?: string }).code === "Closed",
    );
  }),
);

test(
  "a bad key is reported before the value is looked at",
  withHandles(1, {}, ([cache]) => {
    let ran = false;
    const value = {
      toJSON() {
        ran = true;
        return 1;
      },
    };
    assert.throws(
      () => cache.set(42 as unknown as string, value),
      /key must be a string or a Uint8Array, got number/,
    );
    assert.throws(
      () => cache.set(null as unknown as string, () => 1),
      /key must be a string or a Uint8Array, got null/,
    );
    assert.equal(ran, false);
  }),
);

test(
  "a toJSON that uses the cache does not disturb the set that runs it",
  withHandles(1, {}, ([cache]) => {
    cache.set("other", "x");
    const value = {
      toJSON() {
        assert.equal(cache.get("other"), "x");
        cache.set("nested", { n: 1 });
        return { a: 1 };
      },
    };
    cache.set("mine", value);
    assert.deepEqual(cache.get("mine"), { a: 1 });
    assert.deepEqual(cache.get("nested"), { n: 1 });
    assert.equal(cache.get("other"), "x");
  }),
);

test(
  "decodeCacheBytes: 0 turns the memo off; bad values are refused with the limit",
  withHandles(1, { decodeCacheBytes: 0 }, ([cache]) => {
    cache.set("k", "v");
    for (let i = 0; i < 5; i++) assert.equal(cache.get("k"), "v");
    assert.equal(cache.stats().memoHits, 0);
    assert.equal(cache.stats().hits, 5);
    for (const bad of [-1, 1.5, 2 ** 26 + 1, NaN]) {
      assert.throws(
        () =>
          SharedCache.open("memo-bad", {
            capacity: 4,
            maxKeyBytes: 8,
            maxValueBytes: 8,
            decodeCacheBytes: bad,
          }),
        (e: unknown) =>
          e instanceof RangeError && e.message.includes("decodeCacheBytes") &&
          e.message.includes("67108864"),
      );
    }
  }),
);
