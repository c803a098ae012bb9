/**
 * Tests of memoize() and @memoized in one process: call counts, TTL,
 * eviction, async hits, single-flight, rejections, keys, options, the method
 * decorator, and the cross-process single-flight protocol run against a fake
 * shared cache (several handles on one store, liveness under the test's
 * control). The same protocol against the native SharedCache and real
 * processes is in memoize_shared_test.ts.
 */
// Many functions here are `async` without awaiting: memoize must see them
// declared async (a hit then returns a promise before any call).
// deno-lint-ignore-file require-await
import assert from "node:assert/strict";
import { pastDeadline } from "./_clock.ts";
import { runtime, test } from "./_harness.ts";
import { memoize, memoized, memoizeKey } from "../lib/memoize.ts";
import { MemoryCache } from "../lib/memory_cache.ts";
import { deriveKey } from "../lib/_key.ts";
import { CLAIM_PREFIX } from "../lib/_single_flight.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A promise with its resolve and reject, for computations the test finishes. */
function deferred<T>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

// ---------------------------------------------------------------------------
// Synchronous functions, memory backend.

test("memoize: a hit does not call the function; different arguments do", () => {
  let calls = 0;
  const slow = (id: number, opts: { full: boolean }) => ({ id, full: opts.full, call: ++calls });
  const fast = memoize(slow, { maxSize: 100 });
  const first = fast(1, { full: true });
  assert.equal(fast(1, { full: true }), first);
  assert.equal(calls, 1);
  fast(1, { full: false });
  fast(2, { full: true });
  assert.equal(calls, 3);
  assert.equal(fast.original, slow);
  const stats = fast.stats();
  assert.equal(stats.hits, 1);
  assert.equal(stats.misses, 3);
  assert.equal(stats.calls, 3);
  assert.equal(stats.size, 3);
});

test("memoize: arguments that look alike but differ do not collide", () => {
  const seen: unknown[][] = [];
  const f = memoize((...args: unknown[]) => {
    seen.push(args);
    return seen.length;
  });
  const lists: unknown[][] = [
    [1],
    ["1"],
    [[1, 2]],
    ["1,2"],
    [{ a: 1 }],
    [{ a: "1" }],
    [1, undefined],
    [null],
    [undefined],
    [],
  ];
  const results = lists.map((args) => f(...args));
  assert.deepEqual(results, lists.map((_, i) => i + 1));
  // Equal data, other key order: a hit.
  assert.equal(f({ b: 2, a: 1 }), f({ a: 1, b: 2 }));
  assert.equal(seen.length, lists.length + 1);
});

test("memoize: an undefined result is cached too", () => {
  let calls = 0;
  const f = memoize((_: number): undefined => {
    calls++;
    return undefined;
  });
  assert.equal(f(1), undefined);
  assert.equal(f(1), undefined);
  assert.equal(calls, 1);
  assert.equal(f.stats().hits, 1);
});

test("memoize: entries expire after ttlMs", async () => {
  let calls = 0;
  const f = memoize((n: number) => n + ++calls, { ttlMs: 30 });
  f(1);
  const stored = performance.now();
  f(1);
  assert.equal(calls, 1);
  await pastDeadline(stored, 30);
  f(1);
  assert.equal(calls, 2, "the entry outlived its 30 ms ttlMs");
});

test("memoize: maxSize bounds the cache, evicting by SIEVE", () => {
  let calls = 0;
  const f = memoize((n: number) => {
    calls++;
    return n;
  }, { maxSize: 2 });
  f(1);
  f(2);
  f(1); // visited
  f(3); // evicts 2
  assert.equal(f.stats().size, 2);
  const before = calls;
  f(1);
  assert.equal(calls, before, "1 was visited and must have survived");
  f(2);
  assert.equal(calls, before + 1, "2 must have been evicted");
});

test("memoize: a thrown error is not cached; the next call retries", () => {
  let calls = 0;
  const f = memoize((n: number) => {
    if (++calls === 1) throw new Error("first call fails");
    return n;
  });
  assert.throws(() => f(1), /first call fails/);
  assert.equal(f(1), 1);
  assert.equal(f(1), 1);
  assert.equal(calls, 2);
  assert.equal(f.stats().errors, 1);
});

test("memoize: this is passed to the function but is not part of the key", () => {
  const f = memoize(function (this: { base: number }, n: number) {
    return this.base + n;
  });
  assert.equal(f.call({ base: 10 }, 1), 11);
  assert.equal(f.call({ base: 20 }, 1), 11); // documented: memoize ignores this
});

test("memoize: a key function replaces the derived key and gets this", () => {
  let calls = 0;
  const f = memoize((id: number, _opts: { verbose: () => void }) => ({ id, call: ++calls }), {
    key: (id) => `user:${id}`,
  });
  const log = () => {};
  f(1, { verbose: log }); // a function argument is fine with a key function
  f(1, { verbose: () => {} });
  assert.equal(calls, 1);
  const bad = memoize((n: number) => n, { key: (n) => n as unknown as string });
  assert.throws(() => bad(1), {
    name: "TypeError",
    message: "memoize: the key function must return a string, got 1",
  });
  const reserved = memoize((n: number) => n, { key: () => "\u0000sf:x" });
  assert.throws(() => reserved(1), /must not start with U\+0000/);
});

test("memoize: an unencodable argument is a TypeError naming it, and the function is not called", () => {
  let calls = 0;
  const f = memoize((_id: number, _cb: () => void) => ++calls);
  assert.throws(() => f(1, () => {}), {
    name: "TypeError",
    message: "memoize: argument 1 cannot be used in a key: functions are not encodable",
  });
  assert.equal(calls, 0);
});

test("memoize: clear() empties the cache; close() is idempotent and a later call reopens", () => {
  let calls = 0;
  const f = memoize((n: number) => n + 0 * ++calls);
  f(1);
  f.clear();
  f(1);
  assert.equal(calls, 2);
  f.close();
  f.close();
  f(1);
  assert.equal(calls, 3);
  {
    using g = memoize((n: number) => n);
    g(1);
  }
});

test("memoize: options are validated with messages that name the option and the value", () => {
  const id = (n: number) => n;
  assert.throws(() => memoize(42 as never), {
    name: "TypeError",
    message: "memoize: fn must be a function, got 42",
  });
  assert.throws(() => memoize(id, { maxSize: 0 }), {
    name: "RangeError",
    message: "memoize: maxSize must be a positive integer, got 0",
  });
  assert.throws(() => memoize(id, { ttlMs: -5 }), {
    name: "RangeError",
    message: "memoize: ttlMs must be a positive number of milliseconds, got -5",
  });
  assert.throws(
    () => memoize(id, { waitTimeoutMs: 0 }),
    /waitTimeoutMs must be a positive number of milliseconds, got 0/,
  );
  assert.throws(
    () => memoize(id, { cache: "disk" as never }),
    /cache must be "memory", "shared" or an object .* got "disk"/,
  );
  assert.throws(() => memoize(id, { name: "" }), /name must be a non-empty string, got ""/);
  assert.throws(() => memoize(id, { key: "id" as never }), /key must be a function, got "id"/);
  assert.throws(() => memoize(id, { async: "yes" as never }), /async must be a boolean, got "yes"/);
  assert.throws(
    () => memoize(id, { cache: new MemoryCache(), maxSize: 5 }),
    /maxSize applies to a cache that memoize creates/,
  );
});

// ---------------------------------------------------------------------------
// Cache instances.

test("memoize: uses a MemoryCache instance, with ttlMs per entry", () => {
  let time = 0;
  const cache = new MemoryCache({ capacity: 10, clock: () => time });
  let calls = 0;
  const f = memoize((n: number) => n * 10 + 0 * ++calls, { cache, ttlMs: 20 });
  f(1);
  assert.equal(cache.get(deriveKey([1])), 10);
  time = 19;
  f(1);
  assert.equal(calls, 1, "expired before its ttlMs");
  time = 20;
  f(1);
  assert.equal(calls, 2, "outlived its ttlMs");
});

test("memoize: uses any MemoizationCache-shaped cache, such as a Map", () => {
  const cache = new Map<string, unknown>();
  const f = memoize((n: number) => n + 1, { cache });
  f(1);
  assert.equal(cache.get(deriveKey([1])), 2);
  f.clear();
  assert.equal(cache.size, 0);
});

/** A cache that refuses values over `maxValueBytes` and keys over `maxKeyBytes`, as SharedCache does. */
class LimitedCache extends MemoryCache {
  constructor(readonly maxKeyBytes: number, readonly maxValueBytes: number) {
    super();
  }
  override get(key: string | Uint8Array) {
    if (typeof key === "string" && key.length > this.maxKeyBytes) {
      throw new RangeError(`key of ${key.length} bytes`);
    }
    return super.get(key);
  }
  override set(key: string | Uint8Array, value: unknown, options?: { ttlMs?: number }) {
    if (typeof key === "string" && key.length > this.maxKeyBytes) {
      throw new RangeError(`key of ${key.length} bytes`);
    }
    if (JSON.stringify(value).length > this.maxValueBytes) throw new RangeError("value too large");
    return super.set(key, value, options);
  }
}

test("memoize: results too large for the cache are returned, not cached, and counted", async () => {
  let calls = 0;
  const f = memoize((n: number) => "x".repeat(n + 0 * ++calls), {
    cache: new LimitedCache(100, 50),
  });
  assert.equal(f(10).length, 10);
  assert.equal(f(100).length, 100);
  assert.equal(f(100).length, 100);
  f(10);
  assert.equal(calls, 3);
  assert.equal(f.stats().oversizeSkips, 2);

  const g = memoize(async (n: number) => "y".repeat(n), { cache: new LimitedCache(100, 50) });
  assert.equal((await g(100)).length, 100);
  assert.equal(g.stats().oversizeSkips, 1);

  const long = memoize((s: string) => s.length, { cache: new LimitedCache(20, 1000) });
  assert.equal(long("k".repeat(50)), 50);
  assert.equal(long("k".repeat(50)), 50);
  assert.equal(long.stats().oversizeSkips, 2);
  assert.equal(long.stats().calls, 2);
});

// ---------------------------------------------------------------------------
// Asynchronous functions.

test("memoize async: a hit returns a resolved promise without calling the function", async () => {
  let calls = 0;
  const f = memoize(async (n: number) => {
    calls++;
    await sleep(1);
    return n * 2;
  });
  assert.equal(await f(2), 4);
  const hit = f(2);
  assert.ok(hit instanceof Promise);
  assert.equal(await hit, 4);
  assert.equal(calls, 1);
  assert.equal(f.stats().hits, 1);
});

test("memoize async: N concurrent calls with one key make one call (single-flight)", async () => {
  let calls = 0;
  const gate = deferred<void>();
  const f = memoize(async (id: number) => {
    calls++;
    await gate.promise;
    return { id };
  });
  const pending = Array.from({ length: 25 }, () => f(7));
  const other = f(8);
  assert.equal(f.stats().inflight, 2);
  gate.resolve();
  const results = await Promise.all(pending);
  await other;
  assert.equal(calls, 2);
  assert.ok(results.every((r) => r === results[0]));
  assert.equal(f.stats().inflightJoins, 24);
  assert.equal(f.stats().inflight, 0);
  await f(7);
  assert.equal(calls, 2);
});

test("memoize async: a rejection reaches every joined caller, is not cached, and later calls retry", async () => {
  let calls = 0;
  const gate = deferred<void>();
  const f = memoize(async (n: number) => {
    calls++;
    await gate.promise;
    if (calls === 1) throw new Error(`boom ${n}`);
    return n;
  });
  const joined = Array.from({ length: 5 }, () => f(1));
  gate.resolve();
  const settled = await Promise.allSettled(joined);
  assert.ok(
    settled.every((s) => s.status === "rejected" && (s.reason as Error).message === "boom 1"),
  );
  assert.equal(calls, 1);
  assert.equal(f.stats().errors, 1);
  assert.equal(f.stats().size, 0);
  assert.equal(await f(1), 1);
  assert.equal(await f(1), 1);
  assert.equal(calls, 2);
});

test("memoize async: a synchronous throw of an async function is a rejection, not cached", async () => {
  let calls = 0;
  const f = memoize((n: number): Promise<number> => {
    if (++calls === 1) throw new Error("sync throw");
    return Promise.resolve(n);
  }, { async: true });
  await assert.rejects(f(1) as Promise<number>, /sync throw/);
  assert.equal(await f(1), 1);
});

test("memoize async: a function returning promises is learned at its first call", async () => {
  let calls = 0;
  const f = memoize((n: number) => Promise.resolve(n + 0 * ++calls));
  assert.equal(await f(1), 1);
  const hit = f(1);
  assert.ok(hit instanceof Promise, "after the first call, hits are promises");
  assert.equal(await hit, 1);
  assert.equal(calls, 1);
});

test("memoize async: async: true makes a hit a promise before any call (value stored by someone else)", async () => {
  const cache = new MemoryCache();
  cache.set(deriveKey([1]), "stored");
  const f = memoize((_n: number) => Promise.resolve("computed"), { cache, async: true });
  const hit = f(1);
  assert.ok(hit instanceof Promise);
  assert.equal(await hit, "stored");
});

test("memoize async: clear() during a call keeps its result out of the cache", async () => {
  const gate = deferred<void>();
  let calls = 0;
  const f = memoize(async (n: number) => {
    calls++;
    await gate.promise;
    return n;
  });
  const running = f(1);
  f.clear();
  gate.resolve();
  assert.equal(await running, 1);
  assert.equal(f.stats().size, 0);
  await f(1);
  assert.equal(calls, 2);
});

// ---------------------------------------------------------------------------
// The method decorator.

test("memoized: this is bound, and distinct instances have distinct entries", () => {
  let calls = 0;
  class Counter {
    constructor(readonly base: number) {}
    @memoized()
    plus(n: number): number {
      calls++;
      return this.base + n;
    }
  }
  const a = new Counter(10);
  const b = new Counter(20);
  assert.equal(a.plus(1), 11);
  assert.equal(b.plus(1), 21);
  assert.equal(a.plus(1), 11);
  assert.equal(b.plus(1), 21);
  assert.equal(calls, 2);
  const stats = (Counter.prototype.plus as unknown as { stats(): { hits: number; misses: number } })
    .stats();
  assert.equal(stats.hits, 2);
  assert.equal(stats.misses, 2);
  assert.equal(Counter.prototype.plus.name, "plus");
});

test("memoized: instances with equal [memoizeKey]() share entries", () => {
  let calls = 0;
  class Repo {
    constructor(readonly db: string) {}
    [memoizeKey](): string {
      return this.db;
    }
    @memoized({ ttlMs: 1000 })
    find(id: number): { id: number; db: string } {
      calls++;
      return { id, db: this.db };
    }
  }
  new Repo("main").find(1);
  new Repo("main").find(1);
  new Repo("replica").find(1);
  assert.equal(calls, 2);
});

test("memoized: static and async methods", async () => {
  let calls = 0;
  class Service {
    @memoized()
    static version(n: number): string {
      calls++;
      return `v${n}`;
    }
    @memoized()
    async load(id: number): Promise<{ id: number }> {
      calls++;
      await sleep(5);
      return { id };
    }
  }
  assert.equal(Service.version(1), "v1");
  assert.equal(Service.version(1), "v1");
  const service = new Service();
  const loads = await Promise.all([service.load(1), service.load(1), service.load(1)]);
  assert.ok(loads[0] === loads[1] && loads[1] === loads[2]);
  assert.equal(calls, 2);
});

// Deno 2.9.6 cannot load a module with a decorated #private method that takes
// parameters (swc bug, fixed upstream in swc-project/swc#12161), so the class
// lives in a fixture that only Bun imports; the specifier is a variable to
// keep it out of Deno's module graph.
const PRIVATE_FIXTURE = "./_private_method_fixture.ts";
test("memoized: private methods (Bun; Deno 2.9.6 has a transpiler bug)", async () => {
  const { Vault } = await import(PRIVATE_FIXTURE) as typeof import("./_private_method_fixture.ts");
  const vault = new Vault();
  assert.equal(vault.reveal(2), 6);
  assert.equal(vault.reveal(2), 6);
  assert.equal(vault.calls, 1);
}, { ignore: runtime === "deno" });

test("memoized: decorating something other than a method, or a legacy call, is a TypeError", () => {
  const decorate = memoized() as unknown as (
    target: unknown,
    context: unknown,
    descriptor?: unknown,
  ) => unknown;
  assert.throws(() => decorate(() => 1, { kind: "getter", name: "x" }), {
    name: "TypeError",
    message: "memoized: decorates methods only, got a getter (x)",
  });
  assert.throws(
    () => decorate({}, "find", { value: () => 1 }),
    /legacy decorator call; turn off experimentalDecorators/,
  );
  assert.throws(
    () => memoized({ maxSize: -1 }),
    /memoized: maxSize must be a positive integer, got -1/,
  );
});

// ---------------------------------------------------------------------------
// Single-flight across processes, against a fake shared cache.

/** What all handles of the fake shared cache share: the entries and which tokens are alive. */
class FakeRegion {
  entries = new Map<string, { value: unknown; expiresAt: number }>();
  alive = new Set<string>();
  /** Tokens of the handles that have found another handle's claim: they wait for it. */
  waiting = new Set<string>();
  #notify: Array<() => void> = [];

  noteWaiting(token: string): void {
    this.waiting.add(token);
    for (const wake of this.#notify.splice(0)) wake();
  }

  /**
   * Resolves once `n` handles have found another's claim (they are waiting):
   * the signal the tests order their steps by, instead of sleeping. Rejects
   * after 10 s, which only a broken protocol can take.
   */
  async waiters(n: number): Promise<void> {
    const deadline = performance.now() + 10_000;
    while (this.waiting.size < n) {
      if (performance.now() > deadline) {
        throw new Error(`only ${this.waiting.size} of ${n} handles ever found the claim`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#notify.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** One handle on a FakeRegion, with the SharedCache methods the protocol uses; no `add`. */
class FakeHandle {
  readonly handleToken: string;
  constructor(readonly region: FakeRegion, token: string, readonly maxValueBytes = 1 << 20) {
    this.handleToken = token;
    region.alive.add(token);
  }
  isHandleAlive(token: string): boolean {
    return this.region.alive.has(token);
  }
  get(key: string): unknown {
    const entry = this.region.entries.get(key);
    if (entry === undefined) return undefined;
    if (performance.now() >= entry.expiresAt) {
      this.region.entries.delete(key);
      return undefined;
    }
    if (key.startsWith(CLAIM_PREFIX) && !String(entry.value).startsWith(`${this.handleToken}/`)) {
      this.region.noteWaiting(this.handleToken);
    }
    // Values cross the process boundary encoded: a copy, never the object.
    return structuredClone(entry.value);
  }
  has(key: string): boolean {
    return this.get(key) !== undefined || this.region.entries.has(key);
  }
  set(key: string, value: unknown, options?: { ttlMs?: number }): void {
    if ((JSON.stringify(value)?.length ?? 0) > this.maxValueBytes) {
      throw new RangeError("value too large");
    }
    this.region.entries.set(key, {
      value: structuredClone(value),
      expiresAt: performance.now() + (options?.ttlMs ?? Infinity),
    });
  }
  delete(key: string): boolean {
    return this.region.entries.delete(key);
  }
  clear(): void {
    this.region.entries.clear();
  }
  get size(): number {
    return this.region.entries.size;
  }
  /** Simulates the process dying (the kernel releases its liveness lock). */
  die(): void {
    this.region.alive.delete(this.handleToken);
  }
}

/** A handle whose cache also has the atomic `add` (insert if absent). */
class FakeHandleWithAdd extends FakeHandle {
  add(key: string, value: unknown, options?: { ttlMs?: number }): boolean {
    if (this.get(key) !== undefined) return false;
    this.set(key, value, options);
    return true;
  }
}

/** A handle whose cache has a cross-process lock, as SharedCache does (`lock()`). */
class FakeHandleWithLock extends FakeHandle {
  static held = false;
  lock() {
    assert.equal(FakeHandleWithLock.held, false, "lock() while the lock is held");
    FakeHandleWithLock.held = true;
    return {
      get: (key: string) => this.get(key),
      set: (key: string, value: unknown, options?: { ttlMs?: number }) =>
        this.set(key, value, options),
      release: () => {
        FakeHandleWithLock.held = false;
      },
    };
  }
}

const VARIANTS = [
  { Handle: FakeHandle, variant: "get/set claims" },
  { Handle: FakeHandleWithAdd, variant: "add claims" },
  { Handle: FakeHandleWithLock, variant: "lock() claims" },
];

for (const { Handle, variant } of VARIANTS) {
  test(`single-flight (${variant}): a waiting process gets the computing process's value`, async () => {
    const region = new FakeRegion();
    const gate = deferred<void>();
    let callsA = 0;
    let callsB = 0;
    const a = memoize(async (id: number) => {
      callsA++;
      await gate.promise;
      return { id, by: "a" };
    }, { cache: new Handle(region, "A") });
    const b = memoize(async (id: number) => {
      callsB++;
      return { id, by: "b" };
    }, { cache: new Handle(region, "B") });
    const pa = a(1);
    const pb = b(1);
    await region.waiters(1); // b found a's claim
    assert.equal(callsB, 0, "b computed while a held the claim");
    gate.resolve();
    assert.deepEqual(await pa, { id: 1, by: "a" });
    assert.deepEqual(await pb, { id: 1, by: "a" });
    assert.equal(callsA + callsB, 1);
    assert.equal(b.stats().remoteJoins, 1);
    assert.equal(
      region.entries.has(CLAIM_PREFIX + deriveKey([1])),
      false,
      "the claim was released",
    );
  });

  test(`single-flight (${variant}): N processes missing at once compute once`, async () => {
    const region = new FakeRegion();
    let calls = 0;
    const gate = deferred<void>();
    const processes = Array.from({ length: 6 }, (_, i) =>
      memoize(async (id: number) => {
        calls++;
        await gate.promise;
        return `${id} by ${i}`;
      }, { cache: new Handle(region, `P${i}`) }));
    const pending = processes.map((f) => f(5));
    await region.waiters(5); // all but the claimant found its claim
    gate.resolve();
    const results = await Promise.all(pending);
    assert.equal(calls, 1);
    assert.ok(results.every((r) => r === results[0]));
    assert.equal(processes.reduce((sum, f) => sum + f.stats().remoteJoins, 0), 5);
  });

  test(`single-flight (${variant}): a killed claimant's waiters take over within a poll, not the timeout`, async () => {
    const region = new FakeRegion();
    const handleA = new Handle(region, "A");
    const never = deferred<string>();
    const a = memoize((_id: number) => never.promise, { cache: handleA, async: true });
    const b = memoize(async (id: number) => `b computed ${id}`, {
      cache: new Handle(region, "B"),
      waitTimeoutMs: 20_000,
    });
    const c = memoize(async (id: number) => `c computed ${id}`, {
      cache: new Handle(region, "C"),
      waitTimeoutMs: 20_000,
    });
    void a(1);
    const pb = b(1);
    const pc = c(1);
    await region.waiters(2); // b and c found a's claim
    handleA.die();
    const [vb, vc] = await Promise.all([pb, pc]);
    // Taken over, not waited out (the bound is 20 s).
    assert.equal(b.stats().remoteTimeouts + c.stats().remoteTimeouts, 0);
    // One waiter takes over and computes; the other waits for it.
    assert.equal(b.stats().remoteTakeovers + c.stats().remoteTakeovers, 1);
    assert.equal(b.stats().calls + c.stats().calls, 1);
    assert.equal(vb, vc);
  });

  test(`single-flight (${variant}): a claim left by a dead process is taken over at once`, async () => {
    const region = new FakeRegion();
    region.entries.set(CLAIM_PREFIX + deriveKey([1]), { value: "dead-token", expiresAt: Infinity });
    const b = memoize(async (id: number) => id, {
      cache: new Handle(region, "B"),
      waitTimeoutMs: 20_000,
    });
    assert.equal(await b(1), 1);
    assert.equal(b.stats().remoteTimeouts, 0, "waited out instead of taking over");
    assert.equal(b.stats().remoteTakeovers, 1);
    // Synchronous functions take over the same way.
    region.entries.set(CLAIM_PREFIX + deriveKey([2]), { value: "dead-token", expiresAt: Infinity });
    const s = memoize((id: number) => id * 2, {
      cache: new Handle(region, "S"),
      waitTimeoutMs: 20_000,
    });
    assert.equal(s(2), 4);
    assert.equal(s.stats().remoteTakeovers, 1);
  });

  test(`single-flight (${variant}): a live claimant that never finishes bounds the wait by waitTimeoutMs`, async () => {
    const region = new FakeRegion();
    new Handle(region, "busy"); // alive, holds the claim, never stores
    region.entries.set(CLAIM_PREFIX + deriveKey([1]), { value: "busy/0", expiresAt: Infinity });
    const b = memoize(async (id: number) => id, {
      cache: new Handle(region, "B"),
      waitTimeoutMs: 80,
    });
    // The wait is bounded by waitTimeoutMs: at least that long (an upper
    // bound on time would race a slow machine; the counter says it ended
    // by the bound).
    let started = performance.now();
    assert.equal(await b(1), 1);
    let waited = performance.now() - started;
    assert.ok(waited >= 75, `waited only ${waited} ms`);
    assert.equal(b.stats().remoteTimeouts, 1);
    // A synchronous waiter blocks for the same bound.
    const s = memoize((id: number) => id, { cache: new Handle(region, "S"), waitTimeoutMs: 80 });
    region.entries.set(CLAIM_PREFIX + deriveKey([1]), { value: "busy/0", expiresAt: Infinity });
    region.entries.delete(deriveKey([1]));
    started = performance.now();
    assert.equal(s(1), 1);
    waited = performance.now() - started;
    assert.ok(waited >= 75, `waited only ${waited} ms`);
    assert.equal(s.stats().remoteTimeouts, 1);
  });

  test(`single-flight (${variant}): a claimant that fails lets its waiters compute; nothing is cached`, async () => {
    const region = new FakeRegion();
    const gate = deferred<void>();
    const a = memoize(async (_id: number) => {
      await gate.promise;
      throw new Error("a failed");
    }, { cache: new Handle(region, "A") });
    let callsB = 0;
    const b = memoize(async (id: number) => id + 0 * ++callsB, { cache: new Handle(region, "B") });
    const pa = a(1);
    const pb = b(1);
    await region.waiters(1); // b found a's claim
    gate.resolve();
    await assert.rejects(pa, /a failed/);
    assert.equal(await pb, 1);
    assert.equal(callsB, 1);
    assert.equal(b.stats().remoteJoins, 0);
  });

  test(`single-flight (${variant}): an oversize result is returned to the claimant; waiters compute`, async () => {
    const region = new FakeRegion();
    const gate = deferred<void>();
    const big = (id: number) => "z".repeat(200 + id);
    const a = memoize(async (id: number) => {
      await gate.promise;
      return big(id);
    }, { cache: new Handle(region, "A", 100) });
    const b = memoize(async (id: number) => big(id), { cache: new Handle(region, "B", 100) });
    const pa = a(1);
    const pb = b(1);
    await region.waiters(1); // b found a's claim
    gate.resolve();
    assert.equal(await pa, big(1));
    assert.equal(await pb, big(1));
    assert.equal(a.stats().oversizeSkips, 1);
    assert.equal(b.stats().oversizeSkips, 1);
    assert.equal(region.entries.size, 0, "no value and no claim left");
  });
}

test("single-flight: a value stored between the miss and the claim is used, not computed again", async () => {
  // Another process computes the value, stores it and releases its claim
  // between this process's miss and its claim: the claim succeeds, and only
  // reading the value again after claiming avoids a second computation.
  const region = new FakeRegion();
  class Racing extends FakeHandleWithAdd {
    raced = 0;
    override add(key: string, value: unknown, options?: { ttlMs?: number }): boolean {
      if (key.startsWith(CLAIM_PREFIX)) {
        this.raced++;
        new FakeHandle(this.region, "other").set(key.slice(CLAIM_PREFIX.length), "theirs");
      }
      return super.add(key, value, options);
    }
  }
  let calls = 0;
  const asyncHandle = new Racing(region, "A");
  const f = memoize(async (_id: number) => `ours ${++calls}`, { cache: asyncHandle });
  assert.equal(await f(1), "theirs");
  const syncHandle = new Racing(region, "S");
  const g = memoize((_id: number) => `ours ${++calls}`, { cache: syncHandle });
  assert.equal(g(2), "theirs");
  assert.deepEqual([asyncHandle.raced, syncHandle.raced], [1, 1], "the race was staged");
  assert.equal(calls, 0, "computed although the value was stored before the claim was read back");
  assert.equal(region.entries.has(CLAIM_PREFIX + deriveKey([1])), false, "the claim was released");
  assert.equal(region.entries.has(CLAIM_PREFIX + deriveKey([2])), false, "the claim was released");
});

test("single-flight: a waiter that finds the claim released reads the value once more", async () => {
  // The claimant stores the value and releases its claim between the
  // waiter's read of the value (a miss) and its read of the claim (gone):
  // the value is there, and reading it again avoids a computation.
  const region = new FakeRegion();
  const claimant = new FakeHandle(region, "other");
  const key = deriveKey([1]);
  region.entries.set(CLAIM_PREFIX + key, { value: "other/0", expiresAt: Infinity });
  class Racing extends FakeHandleWithAdd {
    claimReads = 0;
    raced = 0;
    override get(k: string): unknown {
      // The first read of the claim is the claim attempt (add), which finds
      // it held; the second is the waiter's poll, just after its miss.
      if (k === CLAIM_PREFIX + key && ++this.claimReads === 2) {
        this.raced++;
        claimant.set(key, "theirs");
        claimant.delete(k);
      }
      return super.get(k);
    }
  }
  const handle = new Racing(region, "B");
  let calls = 0;
  const f = memoize(async (_id: number) => `ours ${++calls}`, {
    cache: handle,
    waitTimeoutMs: 20_000,
  });
  assert.equal(await f(1), "theirs");
  assert.equal(handle.raced, 1, "the race was staged");
  assert.equal(calls, 0, "computed although the released claim's value was stored");
});

test("single-flight: a lock that cannot be had means computing alone, not failing", async () => {
  const region = new FakeRegion();
  const handle = new FakeHandleWithLock(region, "B");
  handle.lock = () => {
    throw Object.assign(new Error("the writer lock stayed held"), { code: "LockTimeout" });
  };
  const f = memoize(async (id: number) => id, { cache: handle });
  assert.equal(await f(1), 1);
  assert.equal(f.stats().calls, 1);
});

test("single-flight: singleFlight: false computes without waiting for a claimant", async () => {
  const region = new FakeRegion();
  new FakeHandle(region, "busy");
  region.entries.set(CLAIM_PREFIX + deriveKey([1]), { value: "busy/0", expiresAt: Infinity });
  const b = memoize(async (id: number) => id, {
    cache: new FakeHandle(region, "B"),
    singleFlight: false,
  });
  assert.equal(await b(1), 1);
  assert.equal(region.waiting.size, 0, "it looked at the claim");
  assert.equal(b.stats().remoteTimeouts, 0);
});

test("single-flight: a claim with this handle's token but another nonce (a dead predecessor in the slot) is taken over", async () => {
  const region = new FakeRegion();
  const handle = new FakeHandle(region, "self");
  region.entries.set(CLAIM_PREFIX + deriveKey([1]), { value: "self/stale", expiresAt: Infinity });
  region.entries.set(CLAIM_PREFIX + deriveKey([2]), { value: "self/stale", expiresAt: Infinity });
  const f = memoize((id: number) => id, { cache: handle, waitTimeoutMs: 5_000 });
  const g = memoize(async (id: number) => id, { cache: handle, waitTimeoutMs: 5_000 });
  assert.equal(f(1), 1);
  assert.equal(await g(2), 2);
  assert.equal(
    f.stats().remoteTimeouts + g.stats().remoteTimeouts,
    0,
    "waited out, not taken over",
  );
  assert.equal(f.stats().remoteTakeovers + g.stats().remoteTakeovers, 2);
});

test("single-flight: a claim that is not a token of the cache counts as dead", async () => {
  const region = new FakeRegion();
  const handle = new FakeHandle(region, "B");
  handle.isHandleAlive = (token: string) => {
    throw new TypeError(`not a handle token: ${token}`);
  };
  region.entries.set(CLAIM_PREFIX + deriveKey([1]), { value: "garbage/x", expiresAt: Infinity });
  const f = memoize(async (id: number) => id, { cache: handle, waitTimeoutMs: 5_000 });
  assert.equal(await f(1), 1);
  assert.equal(f.stats().remoteTakeovers, 1);
});

test("memoized: a shared cache needs [memoizeKey]() on this; identity means nothing in another process", () => {
  const region = new FakeRegion();
  const cache = new FakeHandle(region, "A");
  class NoKey {
    @memoized({ cache })
    get1(n: number): number {
      return n;
    }
  }
  assert.throws(() => new NoKey().get1(1), {
    name: "TypeError",
    message: "memoized: this (an instance of NoKey) has no [memoizeKey]() method, " +
      "which a shared cache needs to tell instances apart across processes",
  });
  class WithKey {
    [memoizeKey](): string {
      return "k";
    }
    @memoized({ cache })
    get1(n: number): number {
      return n;
    }
  }
  assert.equal(new WithKey().get1(1), 1);
  assert.equal(new WithKey().get1(1), 1);
  assert.equal(
    (WithKey.prototype.get1 as unknown as { stats(): { hits: number } }).stats().hits,
    1,
  );
});
