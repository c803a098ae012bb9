/**
 * TieredCache against a real redis-server, with hosts simulated as separate
 * L1 directories in this process (tiered_multiprocess_test.ts runs them as
 * processes of both runtimes): cross-host invalidation of set, delete,
 * deleteByTag and clear; the fill/invalidate race, forced by holding an L2
 * reply until the invalidation has been applied; L1 hits without Redis;
 * grace and stale-while-revalidate with one refresh; Redis SIGSTOP, SIGKILL
 * and restart (epoch, breaker, soft and hard timeouts); single-flight on a
 * host and across hosts; both client adapters.
 *
 * Waits are on conditions (`until`), each bounded; no sleep orders events.
 * Durations are only checked against generous bounds that a hang breaks.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { runtime, test } from "./_harness.ts";
import { clientTransport, GatedTransport, RedisServer, runtimeL2 } from "./_redis.ts";
import { CacheError, SharedCache, TieredCache, type TieredCacheOptions } from "../mod.ts";

const L1 = { capacity: 1_000, maxKeyBytes: 128, maxValueBytes: 4_096 };
let serial = 0;

/** Polls `condition` every 2 ms until it holds; throws naming `what` after `timeoutMs`. */
async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<number> {
  const start = performance.now();
  while (!(await condition())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return performance.now() - start;
}

/** A test world: one redis-server, hosts (directories), caches, cleaned up in `finally`. */
class Fleet {
  readonly redis: RedisServer;
  readonly name = `tiered-${process.pid}-${++serial}`;
  readonly #dirs: string[] = [];
  readonly #caches: TieredCache[] = [];
  readonly #raws: SharedCache[] = [];
  readonly #clients: Array<() => Promise<void>> = [];

  constructor(redis: RedisServer) {
    this.redis = redis;
  }

  /** A new host: an L1 directory of its own. */
  host(): string {
    const dir = mkdtempSync(join(tmpdir(), "shmc-host-"));
    this.#dirs.push(dir);
    return dir;
  }

  /** Opens the fleet's cache on host `dir`. */
  async open(dir: string, options: Partial<TieredCacheOptions> = {}): Promise<TieredCache> {
    let l2 = options.l2;
    if (l2 === undefined || (l2.url !== undefined && runtime !== "bun")) {
      // This runtime's client: a URL under Bun, a node-redis client elsewhere.
      const { url, ...rest } = l2 ?? {};
      const made = await runtimeL2(url ?? this.redis.url);
      this.#clients.push(made.close);
      l2 = { ...rest, ...made.l2 };
    }
    const cache = await TieredCache.open(this.name, {
      heartbeatMs: 100,
      electionMs: 20,
      ...options,
      l1: { ...L1, dir, ...options.l1 },
      l2: { timeoutMs: 300, ...l2 },
    });
    this.#caches.push(cache);
    return cache;
  }

  /** Host `dir`'s L1, read directly. */
  raw(dir: string): SharedCache {
    const raw = SharedCache.open(this.name, { ...L1, dir });
    this.#raws.push(raw);
    return raw;
  }

  async close(): Promise<void> {
    for (const raw of this.#raws) raw.close();
    await Promise.allSettled(this.#caches.map((c) => c.close()));
    await Promise.allSettled(this.#clients.map((close) => close()));
    await this.redis.close();
    for (const dir of this.#dirs) rmSync(dir, { recursive: true, force: true });
  }
}

async function withFleet(fn: (fleet: Fleet) => Promise<void>): Promise<void> {
  const fleet = new Fleet(await RedisServer.start());
  try {
    await fn(fleet);
  } finally {
    await fleet.close();
  }
}

/**
 * Runs `write` on `writer` and waits until `listener` (another host's
 * listener) applied every invalidation `writer` published so far: a read on
 * the listener's host that overlapped an invalidation's flight would be
 * fenced (not cached), as it must. `writer` must be the only other host
 * that writes.
 */
async function applied(
  listener: TieredCache,
  writer: TieredCache,
  write: () => Promise<unknown>,
): Promise<void> {
  await write();
  const published = writer.stats().invalidationsPublished;
  await until(
    () => listener.stats().invalidationsApplied >= published,
    "the invalidations to be applied",
  );
}

/** Waits until `cache` is its host's listener with a subscription proven live. */
function live(cache: TieredCache): Promise<number> {
  return until(() => cache.stats().busLive, "the host's listener to be live");
}

test("tiered: a set, delete, deleteByTag and clear on one host reach the other host's L1", async () => {
  await withFleet(async (fleet) => {
    const hostA = fleet.host();
    const hostB = fleet.host();
    const a = await fleet.open(hostA);
    const b = await fleet.open(hostB);
    await live(a);
    await live(b);
    const rawB = fleet.raw(hostB);

    await applied(b, a, () => a.set("k", { v: 1 }));
    assert.deepEqual(await b.get("k"), { v: 1 }); // from L2, fills B's L1
    assert.equal(b.stats().l2Hits, 1);
    assert.deepEqual(await b.get("k"), { v: 1 });
    assert.equal(b.stats().l1Hits, 1);

    await a.set("k", { v: 2 });
    const ms = await until(() => rawB.get("k") === undefined, "B's L1 to drop k after A's set");
    assert.deepEqual(await b.get("k"), { v: 2 });
    console.log(`set on A reached B's L1 within ${ms.toFixed(1)} ms`);

    await a.delete("k");
    await until(() => rawB.get("k") === undefined, "B's L1 to drop k after A's delete");
    assert.equal(await b.get("k"), undefined);

    await a.set("t1", 1, { tags: ["red"] });
    await a.set("t2", 2, { tags: ["red", "big"] });
    await applied(b, a, () => a.set("t3", 3, { tags: ["big"] }));
    for (const k of ["t1", "t2", "t3"]) await b.get(k);
    assert.equal(rawB.has("t1") && rawB.has("t2") && rawB.has("t3"), true);
    await applied(b, a, () => a.deleteByTag("red"));
    assert.equal(await b.get("t1"), undefined);
    assert.equal(await b.get("t2"), undefined);
    assert.equal(await b.get("t3"), 3);
    assert.equal(await a.get("t2"), undefined);
    // A host that never saw the entries: L2 forgot them too.
    const c = await fleet.open(fleet.host());
    assert.equal(await c.get("t1"), undefined);
    assert.equal(await c.get("t3"), 3);

    await a.clear();
    await until(() => rawB.get("t3") === undefined, "B's L1 to be cleared");
    assert.equal(await b.get("t3"), undefined);
    assert.equal(await c.get("t3"), undefined);
    assert.ok(a.stats().invalidationsPublished >= 6);
  });
});

test("tiered: a fresh L1 hit sends nothing to Redis", async () => {
  await withFleet(async (fleet) => {
    const transport = new GatedTransport(await clientTransport(fleet.redis.url));
    try {
      const a = await fleet.open(fleet.host(), { l2: { transport } });
      await a.set("k", "v");
      const before = transport.sent.length;
      for (let i = 0; i < 100; i++) assert.equal(await a.get("k"), "v");
      for (let i = 0; i < 100; i++) assert.equal(await a.getOrSet("k", () => "other"), "v");
      assert.equal(transport.sent.length, before);
      assert.equal(a.stats().l1Hits, 200);
    } finally {
      await transport.close();
    }
  });
});

test("tiered: a fill from L2 that raced an invalidation never writes the old value into L1 (forced)", async () => {
  await withFleet(async (fleet) => {
    const hostA = fleet.host();
    const hostB = fleet.host();
    const transport = new GatedTransport(await clientTransport(fleet.redis.url));
    try {
      const a = await fleet.open(hostA);
      const b = await fleet.open(hostB, { l2: { transport } });
      await live(a);
      await live(b);
      const rawB = fleet.raw(hostB);

      // Control: without a race the fill is written (once A's invalidation
      // of c reached B, so that it cannot race B's read).
      await applied(b, a, () => a.set("c", "c1"));
      assert.equal(await b.get("c"), "c1");
      assert.equal(b.stats().fencedFills, 0);
      assert.equal((rawB.get("c") as unknown[])[0], "c1");

      await a.set("k", "old");
      // B's next read of k from L2 gets "old", then waits at the gate.
      const { reached, open } = transport.holdOnce((args) =>
        // The read script: EVAL, script, 2, entry key, clear key, tag prefix.
        args[0] === "EVAL" && args[3]?.endsWith(":k:k") === true && args.length === 6
      );
      const read = b.get("k");
      await reached;
      await applied(b, a, () => a.set("k", "new"));
      open();
      // The call began before the write: it may return the old value...
      assert.equal(await read, "old");
      // ...but L1 must not keep it.
      assert.equal(b.stats().fencedFills, 1);
      assert.equal(rawB.get("k"), undefined);
      assert.equal(await b.get("k"), "new");
    } finally {
      await transport.close();
    }
  });
});

test("tiered: a local write racing a newer write of another host leaves no stale value in L1 (forced)", async () => {
  await withFleet(async (fleet) => {
    const hostA = fleet.host();
    const hostB = fleet.host();
    const transport = new GatedTransport(await clientTransport(fleet.redis.url));
    try {
      const a = await fleet.open(hostA, { l2: { transport } });
      const b = await fleet.open(hostB);
      await live(a);
      await live(b);
      const rawA = fleet.raw(hostA);
      // A's L2 write runs in Redis, then its reply waits at the gate.
      const { reached, open } = transport.holdOnce((args) =>
        // The write script: EVAL, script, 2, entry key, clear key, value, ...
        args[0] === "EVAL" && args[3]?.endsWith(":k:k") === true && args.length >= 8
      );
      const write = a.set("k", "older");
      await reached;
      // B writes after A in Redis, and its invalidation reaches A's L1 first.
      await applied(a, b, () => b.set("k", "newer"));
      open();
      await write;
      assert.equal(rawA.get("k"), undefined);
      assert.equal(await a.get("k"), "newer");
    } finally {
      await transport.close();
    }
  });
});

test("tiered: a local write whose rival's invalidation was lost in a bus gap is not fresh after the gap (forced)", async () => {
  await withFleet(async (fleet) => {
    const hostA = fleet.host();
    const transport = new GatedTransport(await clientTransport(fleet.redis.url));
    try {
      const a = await fleet.open(hostA, { l2: { transport } });
      const b = await fleet.open(fleet.host());
      await live(a);
      await live(b);
      // A's L2 write runs in Redis, then its reply waits at the gate.
      const { reached, open } = transport.holdOnce((args) =>
        args[0] === "EVAL" && args[3]?.endsWith(":k:k") === true && args.length >= 8
      );
      const write = a.set("k", "older");
      await reached;
      // B writes after A in Redis; its invalidation is lost on A's
      // subscription, then A's transport reports the gap and A's listener
      // proves the bus live again, all before A's write reaches L1.
      transport.drop = (channel) => channel.endsWith(":bus");
      await b.set("k", "newer");
      await until(() => transport.dropped >= 1, "A to lose B's invalidation");
      transport.drop = undefined;
      const gaps = a.stats().busGaps;
      transport.gap();
      assert.equal(a.stats().busGaps, gaps + 1);
      await live(a);
      open();
      await write;
      // A's write began before the gap: what it left in L1 is not fresh.
      assert.equal(await a.get("k"), "newer");
    } finally {
      await transport.close();
    }
  });
});

test("tiered: an invalidation whose publish failed after its L2 write is published again", async () => {
  await withFleet(async (fleet) => {
    const hostB = fleet.host();
    const transport = new GatedTransport(await clientTransport(fleet.redis.url));
    try {
      const a = await fleet.open(fleet.host(), { l2: { transport } });
      const b = await fleet.open(hostB);
      await live(a);
      await live(b);
      const rawB = fleet.raw(hostB);
      await applied(b, a, () => a.set("k", "v1"));
      assert.equal(await b.get("k"), "v1"); // in B's L1 now, fresh
      // A's next bus message fails unsent (a timeout, an open breaker, a
      // dropped connection), after its L2 write succeeded.
      let failed = 0;
      transport.fail = (args) => {
        if (args[0] !== "PUBLISH" || !args[1].endsWith(":bus")) return false;
        transport.fail = undefined;
        failed++;
        return true;
      };
      await a.set("k", "v2"); // counted, not thrown
      assert.equal(failed, 1);
      assert.ok(a.stats().l2Errors >= 1);
      await until(() => rawB.get("k") === undefined, "B's L1 to drop k", 5_000);
      assert.equal(await b.get("k"), "v2");
    } finally {
      await transport.close();
    }
  });
});

test("tiered: a value L1 cannot hold (a Date under its JSON codec) still reaches L2 and invalidates every host", async () => {
  await withFleet(async (fleet) => {
    const hostA = fleet.host();
    const hostB = fleet.host();
    const a = await fleet.open(hostA);
    const b = await fleet.open(hostB);
    await live(a);
    await live(b);
    const rawA = fleet.raw(hostA);
    const rawB = fleet.raw(hostB);
    await applied(b, a, () => a.set("k", { d: "old" }));
    assert.deepEqual(await b.get("k"), { d: "old" });
    assert.deepEqual(await a.get("k"), { d: "old" });
    await a.set("k", { d: new Date(0) });
    // Not kept in A's L1 (neither the old value nor the new one)...
    assert.equal(rawA.get("k"), undefined);
    // ...and the other host was told.
    await until(() => rawB.get("k") === undefined, "B's L1 to drop k", 5_000);
    const json = { d: new Date(0).toJSON() };
    assert.deepEqual(await a.get("k"), json);
    assert.deepEqual(await b.get("k"), json);
    // getOrSet returns what its loader returned, and stores it in L2.
    assert.deepEqual(await a.getOrSet("n", () => ({ d: new Date(0) })), { d: new Date(0) });
    assert.deepEqual(await b.get("n"), json);
  });
});

test("tiered: stale within grace is served at once while one background refresh runs", async () => {
  await withFleet(async (fleet) => {
    const dir = fleet.host();
    const a = await fleet.open(dir, { ttlMs: 20, graceMs: 60_000 });
    const raw = fleet.raw(dir);
    assert.equal(await a.getOrSet("k", () => "v1"), "v1");
    // Until the entry's fresh time is over (its own clock, in the envelope).
    await until(() => Date.now() > (raw.get("k") as [unknown, number])[1], "k to go stale");
    let release!: (value: string) => void;
    let calls = 0;
    const loader = () => {
      calls++;
      return new Promise<string>((resolve) => release = resolve);
    };
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => a.getOrSet("k", loader)));
    assert.deepEqual(results, ["v1", "v1", "v1", "v1", "v1"]);
    // The refresh reads L2 first, then calls the loader.
    await until(() => calls > 0, "the refresh to call the loader");
    assert.equal(a.stats().staleServed, 5);
    assert.equal(a.stats().refreshes, 1);
    release("v2");
    await until(async () => (await a.get("k")) === "v2", "the refresh to store v2");
    assert.equal(calls, 1);
  });
});

test("tiered: soft timeout returns the stale value, hard timeout bounds a hung loader", async () => {
  await withFleet(async (fleet) => {
    const dir = fleet.host();
    const a = await fleet.open(dir, {
      ttlMs: 20,
      graceMs: 60_000,
      softTimeoutMs: 50,
      hardTimeoutMs: 300,
      l2: { url: fleet.redis.url, timeoutMs: 150 },
    });
    const raw = fleet.raw(dir);
    await a.set("k", "old");
    await until(() => Date.now() > (raw.get("k") as [unknown, number])[1], "k to go stale");
    // A fast refresh within the soft timeout is returned.
    assert.equal(await a.getOrSet("k", () => "fast"), "fast");
    await a.set("s", "old");
    await until(() => Date.now() > (raw.get("s") as [unknown, number])[1], "s to go stale");
    const never = () => new Promise<string>(() => {});
    assert.equal(await a.getOrSet("s", never), "old");
    // Nothing at hand: the hard timeout ends the wait.
    const start = performance.now();
    await assert.rejects(
      a.getOrSet("missing", never),
      (e) => e instanceof CacheError && e.code === "Timeout",
    );
    assert.ok(performance.now() - start < 5_000);
    assert.equal(a.stats().hardTimeouts, 1);
  });
});

test("tiered: a loader failure serves the stale value; with nothing stale it is thrown", async () => {
  await withFleet(async (fleet) => {
    const dir = fleet.host();
    const a = await fleet.open(dir, { ttlMs: 20, graceMs: 60_000 });
    const raw = fleet.raw(dir);
    await a.set("k", "old");
    await until(() => Date.now() > (raw.get("k") as [unknown, number])[1], "k to go stale");
    const boom = () => Promise.reject(new Error("boom"));
    assert.equal(await a.getOrSet("k", boom), "old");
    await assert.rejects(a.getOrSet("none", boom), /boom/);
  });
});

test("tiered: Redis SIGSTOP: L1 stale within grace, bounded calls, breaker opens and closes by itself", async () => {
  await withFleet(async (fleet) => {
    const dir = fleet.host();
    const options = {
      graceMs: 60_000,
      hardTimeoutMs: 2_000,
      l2: { url: fleet.redis.url, timeoutMs: 200, breakerThreshold: 2, breakerOpenMs: 300 },
    };
    const a = await fleet.open(dir, options);
    const nograce = await fleet.open(dir, { ...options, graceMs: 0 });
    await live(a);
    await a.set("g", "with-grace");
    await nograce.set("n", "no-grace");
    assert.equal(await a.get("g"), "with-grace");
    assert.equal(a.stats().l1Hits, 1);
    fleet.redis.signal("SIGSTOP");
    try {
      // The listener's heartbeat goes unanswered: the bus is not live, the
      // epoch moved, and what L1 holds is stale from now on.
      await until(() => !a.stats().busLive, "the listener to see the gap");
      const started = performance.now();
      assert.equal(await a.get("g"), "with-grace");
      assert.equal(a.stats().staleServed, 1);
      assert.equal(await nograce.get("n"), undefined); // no grace: not served
      assert.equal(await a.getOrSet("x", () => "loaded"), "loaded");
      await until(() => a.stats().breakerOpen || nograce.stats().breakerOpen, "a breaker to open");
      for (let i = 0; i < 20; i++) assert.equal(await a.getOrSet("y", () => "y"), "y");
      assert.ok(performance.now() - started < 10_000, "calls stayed bounded");
      assert.ok(a.stats().l2Skipped + nograce.stats().l2Skipped > 0);
      assert.ok(a.stats().breakerTrips >= 1);
    } finally {
      fleet.redis.signal("SIGCONT");
    }
    await live(a);
    await until(async () => {
      await a.get("g");
      return !a.stats().breakerOpen;
    }, "the breaker to close");
    await a.set("g", "after");
    assert.equal(await a.get("g"), "after");
  });
});

test("tiered: close returns while Redis is stopped (SIGSTOP), commands in flight and all", async () => {
  await withFleet(async (fleet) => {
    // A node-redis transport that owns its client, closed after the cache.
    const transport = await clientTransport(fleet.redis.url, "node-redis");
    const a = await fleet.open(fleet.host(), { l2: { transport, timeoutMs: 100 } });
    await live(a);
    await a.set("k", "v");
    fleet.redis.signal("SIGSTOP");
    try {
      // Commands that time out stay queued in the client, unanswered.
      await a.get("other");
      await until(() => !a.stats().busLive, "the listener to see the gap");
      let timer!: ReturnType<typeof setTimeout>;
      const closed = await Promise.race([
        a.close().then(() => transport.close()).then(() => true),
        new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 5_000)),
      ]);
      clearTimeout(timer);
      assert.ok(closed, "close() still waiting after 5 s");
    } finally {
      fleet.redis.signal("SIGCONT");
      await transport.close();
    }
  });
});

test("tiered: hardTimeoutMs bounds every call: each Redis command gets at most half of it", async () => {
  await withFleet(async (fleet) => {
    const dir = fleet.host();
    await assert.rejects(
      fleet.open(dir, { hardTimeoutMs: 400, l2: { url: fleet.redis.url, timeoutMs: 5_000 } }),
      /l2.timeoutMs must be at most hardTimeoutMs \/ 2 = 200/,
    );
    await assert.rejects(
      fleet.open(dir, {
        hardTimeoutMs: 400,
        softTimeoutMs: 1_000,
        l2: { url: fleet.redis.url, timeoutMs: undefined },
      }),
      /softTimeoutMs must be at most hardTimeoutMs = 400/,
    );
    // No l2.timeoutMs: the default (1,000) shrinks to fit hardTimeoutMs.
    const strict = await fleet.open(dir, {
      hardTimeoutMs: 400,
      suppressL2Errors: false,
      l2: { url: fleet.redis.url, timeoutMs: undefined },
    });
    await strict.set("k", "v");
    fleet.redis.signal("SIGSTOP");
    try {
      // A write sends two commands (the L2 write, then its invalidation).
      await assert.rejects(
        strict.get("other"),
        (e) => e instanceof CacheError && /took over 200 ms/.test(e.message),
      );
    } finally {
      fleet.redis.signal("SIGCONT");
    }
  });
});

test("tiered: a node-redis subscription to a stopped Redis gives up within subscribeTimeoutMs", async () => {
  await withFleet(async (fleet) => {
    const transport = await clientTransport(fleet.redis.url, "node-redis", 200);
    fleet.redis.signal("SIGSTOP");
    let timer!: ReturnType<typeof setTimeout>;
    try {
      // The listener starts a new attempt every three heartbeats: each one
      // left hanging would keep a client and its socket until Redis answers.
      const outcome = await Promise.race([
        transport.subscribe(["ch"], () => {}, () => {}).then(
          (sub) => sub.close().then(() => "subscribed"),
          () => "rejected",
        ),
        new Promise<string>((resolve) => timer = setTimeout(() => resolve("hanging"), 5_000)),
      ]);
      assert.equal(outcome, "rejected");
    } finally {
      clearTimeout(timer);
      fleet.redis.signal("SIGCONT");
      await transport.close();
    }
  });
});

test("tiered: Redis SIGKILL and restart: no throw, then coherence resumes", async () => {
  await withFleet(async (fleet) => {
    const hostA = fleet.host();
    const hostB = fleet.host();
    const a = await fleet.open(hostA, { graceMs: 60_000 });
    const b = await fleet.open(hostB, { graceMs: 60_000 });
    const strict = await fleet.open(hostB, { suppressL2Errors: false });
    await live(a);
    await live(b);
    await applied(b, a, () => a.set("k", 1));
    assert.equal(await b.get("k"), 1);
    await fleet.redis.kill();
    await until(() => !a.stats().busLive && !b.stats().busLive, "both listeners to see the gap");
    assert.equal(await b.get("k"), 1); // stale, within grace
    assert.equal(await a.getOrSet("m", () => "local"), "local");
    await a.set("w", "x"); // L2 down: counted, not thrown
    assert.ok(a.stats().l2Errors > 0);
    await assert.rejects(
      strict.get("zz"),
      (e) => e instanceof CacheError && e.code === "L2Unavailable",
    );
    await fleet.redis.restart();
    await live(a);
    await live(b);
    // Coherence again: a write on A reaches B's L1.
    const rawB = fleet.raw(hostB);
    await until(async () => {
      await a.set("k", 2);
      return (await b.get("k")) === 2;
    }, "B to read A's write after the restart");
    assert.equal(await b.get("k"), 2);
    await a.set("k", 3);
    await until(() => rawB.get("k") === undefined, "B's L1 to drop k");
    assert.equal(await b.get("k"), 3);
  });
});

test("tiered: a takeover or a gap makes L1 entries filled before it stale", async () => {
  await withFleet(async (fleet) => {
    const dir = fleet.host();
    const first = await fleet.open(dir, { graceMs: 60_000 });
    await live(first);
    const second = await fleet.open(dir, { graceMs: 60_000 });
    await first.set("k", "v");
    assert.equal(await second.get("k"), "v");
    assert.equal(second.stats().l1Hits, 1);
    await first.close();
    await live(second);
    // Filled under the previous listener: stale now, refreshed from L2.
    assert.equal(await second.get("k"), "v");
    assert.equal(second.stats().l1Hits, 1);
    assert.equal(second.stats().l2Hits, 1);
    assert.equal(await second.get("k"), "v");
    assert.equal(second.stats().l1Hits, 2);
  });
});

test("tiered: getOrSet runs the loader once per host, and once per fleet with lockAcrossHosts", async () => {
  await withFleet(async (fleet) => {
    const hostA = fleet.host();
    const hostB = fleet.host();
    const a1 = await fleet.open(hostA, { lockAcrossHosts: true });
    const a2 = await fleet.open(hostA, { lockAcrossHosts: true });
    const b1 = await fleet.open(hostB, { lockAcrossHosts: true });
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => release = resolve);
    const loader = async () => {
      calls++;
      await gate;
      return "computed";
    };
    const all = Promise.all([a1, a1, a2, b1, b1].map((c) => c.getOrSet("k", loader)));
    await until(() => calls > 0, "a loader to start");
    release();
    assert.deepEqual(await all, ["computed", "computed", "computed", "computed", "computed"]);
    assert.equal(calls, 1);
  });
});

test("tiered: the node-redis adapter and a host of each client stay coherent", async () => {
  await withFleet(async (fleet) => {
    const hostA = fleet.host();
    const hostB = fleet.host();
    const nodeRedis = await clientTransport(fleet.redis.url, "node-redis");
    const own = await clientTransport(fleet.redis.url);
    try {
      const a = await fleet.open(hostA, { l2: { transport: nodeRedis } });
      const b = await fleet.open(hostB, { l2: { transport: own } });
      await live(a);
      await live(b);
      const rawA = fleet.raw(hostA);
      const rawB = fleet.raw(hostB);
      await applied(b, a, () => a.set("k", 1));
      assert.equal(await b.get("k"), 1);
      await b.set("k", 2);
      await until(() => rawA.get("k") === undefined, "A's L1 to drop k");
      assert.equal(await a.get("k"), 2);
      await a.set("k", 3);
      await until(() => rawB.get("k") === undefined, "B's L1 to drop k");
      assert.equal(await b.get("k"), 3);
    } finally {
      await nodeRedis.close();
      await own.close();
    }
  });
});

test("tiered: bad arguments get clear errors", async () => {
  await assert.rejects(TieredCache.open("x", {} as TieredCacheOptions), TypeError);
  // Checked before anything is created (no L1 region appears).
  const dir = mkdtempSync(join(tmpdir(), "shmc-args-"));
  try {
    await assert.rejects(
      TieredCache.open("x", { l1: { dir }, l2: { url: "http://nope" } }),
      /redis:\/\/ or rediss:\/\/ URL/,
    );
    await assert.rejects(
      TieredCache.open("x", { l1: { dir }, l2: { url: "redis://127.0.0.1:1", client: {} } }),
      /exactly one of url, client or transport/,
    );
    await assert.rejects(
      TieredCache.open("x", { l1: { dir }, l2: { client: {} } }),
      /Bun's RedisClient or a node-redis client/,
    );
    await assert.rejects(
      TieredCache.open("x", { l1: { dir }, l2: { url: "redis://127.0.0.1:1" }, graceMs: -1 }),
      RangeError,
    );
    if (runtime !== "bun") {
      await assert.rejects(
        TieredCache.open("x", { l1: { dir }, l2: { url: "redis://127.0.0.1:1" } }),
        /l2.url needs Bun's built-in RedisClient/,
      );
    }
    await assert.rejects(
      TieredCache.open("x", { l1: { dir }, l2: { url: "redis://127.0.0.1:1" }, ttlMs: 0 }),
      RangeError,
    );
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await withFleet(async (fleet) => {
    const a = await fleet.open(fleet.host());
    await assert.rejects(a.get(""), RangeError);
    await assert.rejects(a.get("\u0000x"), RangeError);
    await assert.rejects(a.get(1 as unknown as string), TypeError);
    await assert.rejects(a.set("k", undefined), TypeError);
    await assert.rejects(a.set("k", 1, { tags: [""] }), TypeError);
    await assert.rejects(a.set("k", 1, { ttlMs: -1 }), RangeError);
    await assert.rejects(a.getOrSet("k", 1 as unknown as () => number), TypeError);
    await a.close();
    await a.close();
    await assert.rejects(a.get("k"), (e) => e instanceof CacheError && e.code === "Closed");
  });
});

console.log(`tiered tests under ${runtime}`);
