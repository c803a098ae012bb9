/**
 * Real processes of both runtimes on one cache, real SIGKILL and SIGSTOP.
 * Every wait is bounded; every child is killed and every file removed in
 * `finally`.
 */

import assert from "node:assert/strict";
import { SharedCache } from "../mod.ts";
import { test } from "./_harness.ts";
import { faultsUnavailable, writerActive } from "./_hooks.ts";
import { Scope, sleep } from "./_proc.ts";

const OPTIONS = { capacity: 1000, maxKeyBytes: 64, maxValueBytes: 256 };

function open(scope: Scope, name: string, lockTimeoutMs = 500): SharedCache {
  return SharedCache.open(name, { ...OPTIONS, dir: scope.dir, lockTimeoutMs });
}

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(2);
  }
}

test("a Deno and a Bun process write and read one cache", async () => {
  const scope = new Scope();
  try {
    const dw = scope.spawn("deno", ["write", scope.dir, "mixed", "d", "50"]);
    const bw = scope.spawn("bun", ["write", scope.dir, "mixed", "b", "50"]);
    await dw.line("done");
    await bw.line("done");
    const br = scope.spawn("bun", ["read", scope.dir, "mixed", "d", "50"]);
    const dr = scope.spawn("deno", ["read", scope.dir, "mixed", "b", "50"]);
    const readByBun = await br.json<Array<{ i: number; by: string }>>("found");
    const readByDeno = await dr.json<Array<{ i: number; by: string }>>("found");
    assert.deepEqual(
      readByBun.map((v) => [v.i, v.by]),
      Array.from({ length: 50 }, (_, i) => [i, "deno"]),
    );
    assert.deepEqual(
      readByDeno.map((v) => [v.i, v.by]),
      Array.from({ length: 50 }, (_, i) => [i, "bun"]),
    );
    using cache = open(scope, "mixed");
    assert.equal(cache.size, 100);
    assert.ok(cache.verify().ok);
  } finally {
    await scope.cleanup();
  }
});

test("concurrent cold start of several processes on a new cache", async () => {
  const scope = new Scope();
  try {
    const children = [
      scope.spawn("deno", ["cold-start", scope.dir, "cold"]),
      scope.spawn("bun", ["cold-start", scope.dir, "cold"]),
      scope.spawn("deno", ["cold-start", scope.dir, "cold"]),
      scope.spawn("bun", ["cold-start", scope.dir, "cold"]),
    ];
    const done = await Promise.all(children.map((c) => c.line("done")));
    assert.deepEqual(done, children.map((c) => `done ${c.pid}`));
    using cache = open(scope, "cold");
    for (const c of children) assert.equal(cache.get(`cold:${c.pid}`), c.pid);
    assert.equal(cache.size, 4);
    assert.ok(cache.verify().ok);
  } finally {
    await scope.cleanup();
  }
});

test("a live lock holder: set is dropped within the bound, lock() throws LockTimeout, get still works", async () => {
  const scope = new Scope();
  try {
    using cache = open(scope, "live", 100);
    cache.set("before", 1);
    const holder = scope.spawn("bun", ["hold-lock", scope.dir, "live"]);
    await holder.line("locked");
    holder.kill("SIGSTOP"); // a stopped owner is alive: nothing may be stolen
    const t0 = performance.now();
    cache.set("during", 2);
    const waited = performance.now() - t0;
    assert.ok(waited < 5_000, `set returned after ${waited} ms`);
    assert.equal(cache.stats().droppedWrites, 1);
    assert.equal(cache.has("during"), false);
    assert.throws(() => cache.lock(), { name: "CacheError", code: "LockTimeout" });
    assert.equal(cache.get("before"), 1, "readers are not blocked by a held lock");
    assert.equal(cache.get("held-by"), holder.pid, "the owner's write is visible");
    assert.equal(cache.stats().lockOwnerPid, holder.pid);
    holder.kill("SIGKILL");
    await holder.wait();
    cache.set("after", 3);
    assert.equal(cache.get("after"), 3);
    assert.equal(cache.stats().recoveries, 1);
    assert.ok(cache.verify().ok);
  } finally {
    await scope.cleanup();
  }
});

test("a SIGKILLed lock holder: a waiting writer in another process completes promptly", async () => {
  const scope = new Scope();
  try {
    const holder = scope.spawn("deno", ["hold-lock", scope.dir, "killed"]);
    await holder.line("locked");
    // The writer waits up to 20 s for the lock; the kill must free it long before.
    const writer = scope.spawn("bun", [
      "write",
      scope.dir,
      "killed",
      "w",
      "5",
      "--lock-timeout=20000",
    ]);
    // Once open, the writer's first set waits for the lock (or is about to):
    // either way it must find the owner dead and recover, not wait 20 s.
    await writer.line("ready");
    holder.kill("SIGKILL");
    const stats = await writer.json<
      { sets: number; recoveries: number; droppedWrites: number; lockTimeouts: number }
    >("done", 15_000);
    // Recovered, not timed out: a timeout would have dropped the write.
    assert.equal(stats.droppedWrites, 0);
    assert.equal(stats.lockTimeouts, 0);
    assert.equal(stats.recoveries, 1);
    using cache = open(scope, "killed");
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => (cache.get(`w:${i}`) as { i: number }).i), [
      0,
      1,
      2,
      3,
      4,
    ]);
    assert.equal(cache.get("held-by"), holder.pid, "the dead owner's completed write survives");
    assert.ok(cache.verify().ok);
  } finally {
    await scope.cleanup();
  }
});

test("a reader spinning on a dead writer's odd sequence recovers", async () => {
  const scope = new Scope();
  try {
    using cache = open(scope, "odd");
    cache.set("k", "old");
    // Fault step 9: the writer parks inside an overwrite of "k" after marking
    // the slot free, with the seqlock odd.
    const writer = scope.spawn("deno", ["park", scope.dir, "odd", "9", "set", "k", "new"]);
    await writer.line("parking");
    await until(() => writerActive("odd", scope.dir), 10_000, "writer mid-mutation");
    const reader = scope.spawn("bun", ["get-timed", scope.dir, "odd", "k", "--lock-timeout=20000"]);
    // The reader first met the odd sequence of the live writer: a read with
    // a short bound timed out (readTimeouts), so the writer was mid-mutation
    // and alive when the reader arrived. Then it reads with a 20 s bound.
    const probed = await reader.json<{ readTimeouts: number; value: unknown }>("reading");
    assert.deepEqual(probed, { readTimeouts: 1, value: null });
    writer.kill("SIGKILL");
    const got = await reader.json<
      { value: unknown; stats: { readTimeouts: number; recoveries: number } }
    >("got", 30_000);
    // The overwrite never completed: its entry was dropped, never served torn.
    assert.equal(got.value, null);
    // Recovered, not timed out.
    assert.equal(got.stats.readTimeouts, 0);
    assert.equal(got.stats.recoveries, 1);
    assert.equal(writerActive("odd", scope.dir), false);
    const s = cache.stats();
    assert.equal(s.recoveries, 1);
    assert.equal(s.rebuilds, 1);
    assert.ok(cache.verify().ok);
    cache.set("k", "newer");
    assert.equal(cache.get("k"), "newer");
  } finally {
    await scope.cleanup();
  }
}, { skip: faultsUnavailable });

test("a missing native library is a LibraryNotFound error that says how to build it", async () => {
  const scope = new Scope();
  try {
    const child = scope.spawn("bun", ["read", scope.dir, "nolib", "x", "1"], {
      SHM_CACHE_LIB: "/nonexistent/libshm_cache.so",
    });
    const exit = await child.wait();
    assert.notEqual(exit.code, 0);
    assert.match(
      child.stderr,
      /LibraryNotFound|SHM_CACHE_LIB points to \/nonexistent\/libshm_cache.so, which does not exist/,
    );
  } finally {
    await scope.cleanup();
  }
});
