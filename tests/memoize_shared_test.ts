/**
 * Tests of memoize over the native SharedCache: results shared between
 * handles and processes, single-flight across processes (N workers, one
 * computation), a computing process killed mid-computation (its waiters
 * recover within the timeout), the wait bound, oversize results and keys,
 * rejections, and `cache: "shared"`.
 *
 * Workers are this runtime's own executable running _memoize_child.ts.
 */
// Some functions here are `async` without awaiting: memoize must see them
// declared async.
// deno-lint-ignore-file require-await
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { runtime, test } from "./_harness.ts";
import { SharedCache } from "../mod.ts";
import { memoize, memoized, memoizeKey } from "../lib/memoize.ts";
import { MemoryCache } from "../lib/memory_cache.ts";
import type { MemoizeStats } from "../lib/memoize.ts";
import type { ChildConfig } from "./_memoize_child.ts";

const CHILD = fileURLToPath(new URL("./_memoize_child.ts", import.meta.url));
/** The geometry of _memoize_child.ts: every process must open with the same. */
const CACHE_OPTIONS = { capacity: 64, maxKeyBytes: 128, maxValueBytes: 1024 } as const;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let serial = 0;

/** A fresh cache name in a private directory, removed by `dispose`. */
function scratch(): { name: string; dir: string; open(): SharedCache; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), "shm-memo-"));
  const name = `memo-test-${process.pid}-${++serial}`;
  const opened: SharedCache[] = [];
  return {
    name,
    dir,
    open() {
      const cache = SharedCache.open(name, { ...CACHE_OPTIONS, dir });
      opened.push(cache);
      return cache;
    },
    dispose() {
      for (const cache of opened) cache.close();
      try {
        SharedCache.destroy(name, { dir });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

interface ChildResult {
  value: { id: number; pid: number };
  stats: MemoizeStats;
}

/** A worker process and the lines it printed. */
class Child {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  #proc: ReturnType<typeof spawn>;
  #listeners: (() => void)[] = [];

  constructor(config: ChildConfig) {
    const json = JSON.stringify(config);
    const args = runtime === "deno" ? ["run", "-A", CHILD, json] : [CHILD, json];
    this.#proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    createInterface({ input: this.#proc.stdout! }).on("line", (line) => {
      this.lines.push(line);
      for (const listener of this.#listeners) listener();
    });
    this.exited = new Promise((resolve) => this.#proc.on("exit", (code) => resolve(code)));
  }

  /** Resolves with the first line starting with `prefix`; rejects after `timeoutMs`. */
  waitFor(prefix: string, timeoutMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.lines.find((l) => l.startsWith(prefix));
        if (line === undefined) return false;
        clearTimeout(timer);
        this.#listeners = this.#listeners.filter((l) => l !== listener);
        resolve(line);
        return true;
      };
      const listener = () => void check();
      const timer = setTimeout(() => {
        this.#listeners = this.#listeners.filter((l) => l !== listener);
        reject(
          new Error(
            `worker printed no "${prefix}" within ${timeoutMs} ms; it printed: ${
              this.lines.join(" | ")
            }`,
          ),
        );
      }, timeoutMs);
      if (!check()) this.#listeners.push(listener);
    });
  }

  async result(timeoutMs = 30_000): Promise<ChildResult> {
    const line = await this.waitFor("result ", timeoutMs);
    return JSON.parse(line.slice("result ".length)) as ChildResult;
  }

  get computed(): boolean {
    return this.lines.includes("computing");
  }

  kill(): void {
    this.#proc.kill("SIGKILL");
  }
}

function childConfig(
  space: { name: string; dir: string },
  overrides: Partial<ChildConfig>,
): ChildConfig {
  return {
    name: space.name,
    dir: space.dir,
    mode: "async",
    id: 7,
    computeMs: 300,
    waitTimeoutMs: 20_000,
    waitForGo: false,
    ...overrides,
  };
}

/** Whether `promise` is still pending after `ms`. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const marker = Symbol("pending");
  return await Promise.race([promise, sleep(ms).then(() => marker)]) === marker;
}

// ---------------------------------------------------------------------------
// Within one process, across handles.

test("memoize shared: a result computed through one handle is a hit through another", () => {
  const space = scratch();
  try {
    let calls = 0;
    const make = () => memoize((id: number) => ({ id, call: ++calls }), { cache: space.open() });
    const first = make();
    const second = make();
    assert.deepEqual(first(1), { id: 1, call: 1 });
    assert.deepEqual(second(1), { id: 1, call: 1 }); // a decoded copy of the first result
    assert.equal(calls, 1);
    assert.equal(second.stats().hits, 1);
  } finally {
    space.dispose();
  }
});

test('memoize shared: cache: "shared" opens the named cache lazily, and close() releases it', () => {
  const space = scratch();
  try {
    let calls = 0;
    const options = {
      cache: "shared",
      name: space.name,
      maxSize: CACHE_OPTIONS.capacity,
      shared: {
        dir: space.dir,
        maxKeyBytes: CACHE_OPTIONS.maxKeyBytes,
        maxValueBytes: CACHE_OPTIONS.maxValueBytes,
      },
    } as const;
    const a = memoize((s: string) => s.toUpperCase() + ++calls, options);
    const b = memoize((s: string) => s.toUpperCase() + ++calls, options);
    assert.equal(a("x"), "X1");
    assert.equal(b("x"), "X1");
    assert.equal(calls, 1);
    assert.equal(b.stats().size, 1);
    a.close();
    a.close();
    assert.equal(a("x"), "X1"); // reopened
    b.clear();
    assert.equal(a("x"), "X2");
    a.close();
    b.close();
  } finally {
    space.dispose();
  }
});

test("memoize shared: results and keys too large are returned, not cached, and counted", async () => {
  const space = scratch();
  try {
    const f = memoize((n: number) => "v".repeat(n), { cache: space.open() });
    assert.equal(f(5000).length, 5000);
    assert.equal(f(5000).length, 5000);
    assert.equal(f.stats().oversizeSkips, 2);
    assert.equal(f.stats().calls, 2);
    const g = memoize(async (s: string) => s.length, { cache: space.open() });
    assert.equal(await g("k".repeat(500)), 500);
    assert.equal(g.stats().oversizeSkips, 1);
  } finally {
    space.dispose();
  }
});

test("memoize shared: a rejection is not cached; a later call retries", async () => {
  const space = scratch();
  try {
    let calls = 0;
    const cache = space.open();
    const f = memoize(async (id: number) => {
      if (++calls === 1) throw new Error("first fails");
      return id;
    }, { cache });
    await assert.rejects(f(1), /first fails/);
    assert.equal(cache.size, 0, "neither a value nor a claim is left");
    assert.equal(await f(1), 1);
    assert.equal(calls, 2);
  } finally {
    space.dispose();
  }
});

test("memoized shared: instances with equal [memoizeKey]() share results across handles", () => {
  const space = scratch();
  try {
    let calls = 0;
    const cache = space.open();
    class Repo {
      constructor(readonly db: string) {}
      [memoizeKey](): string {
        return this.db;
      }
      @memoized({ cache })
      find(id: number): { id: number; db: string } {
        calls++;
        return { id, db: this.db };
      }
    }
    assert.deepEqual(new Repo("main").find(1), { id: 1, db: "main" });
    assert.deepEqual(new Repo("main").find(1), { id: 1, db: "main" });
    assert.equal(calls, 1);
  } finally {
    space.dispose();
  }
});

test("MemoryCache and SharedCache answer the same operations the same way", () => {
  const space = scratch();
  try {
    const caches = [new MemoryCache({ capacity: 64 }), space.open()];
    const answers = caches.map((cache) => {
      const text = new TextEncoder().encode("key");
      const out: unknown[] = [];
      cache.set("key", "string");
      out.push(cache.get(text), cache.has(text)); // bytes never meet a string key
      cache.set(text, "bytes");
      out.push(cache.get("key"), cache.get(new TextEncoder().encode("key")));
      cache.set("u", undefined);
      out.push(cache.get("u"), cache.has("u"), cache.has("missing"));
      cache.set("forever", [1, { a: true }], { ttlMs: Infinity });
      out.push(cache.get("forever"));
      out.push(cache.delete("key"), cache.delete("key"), cache.size);
      cache.clear();
      out.push(cache.size);
      return out;
    });
    assert.deepEqual(answers[0], answers[1]);
  } finally {
    space.dispose();
  }
});

// ---------------------------------------------------------------------------
// Across processes.

for (const mode of ["async", "sync"] as const) {
  test(
    `memoize shared (${mode}): N processes that miss one key at once compute it once`,
    async () => {
      const space = scratch();
      const children: Child[] = [];
      try {
        const control = space.open();
        for (let i = 0; i < 4; i++) {
          children.push(new Child(childConfig(space, { mode, computeMs: 400, waitForGo: true })));
        }
        await Promise.all(children.map((c) => c.waitFor("ready")));
        control.set("go", true);
        const results = await Promise.all(children.map((c) => c.result()));
        assert.equal(
          children.filter((c) => c.computed).length,
          1,
          "more than one process computed",
        );
        const pids = new Set(results.map((r) => r.value.pid));
        assert.equal(pids.size, 1, "the processes returned different values");
        const joined = results.reduce((sum, r) => sum + r.stats.remoteJoins + r.stats.hits, 0);
        assert.equal(joined, 3);
        assert.deepEqual(await Promise.all(children.map((c) => c.exited)), [0, 0, 0, 0]);
      } finally {
        for (const child of children) child.kill();
        space.dispose();
      }
    },
    { timeoutMs: 60_000 },
  );
}

test(
  "memoize shared: a computing process killed mid-computation releases its waiters",
  async () => {
    const space = scratch();
    const children: Child[] = [];
    try {
      const claimant = new Child(childConfig(space, { computeMs: 60_000 }));
      children.push(claimant);
      await claimant.waitFor("computing");
      // Two waiters: this process (async) and a worker (sync, blocking).
      const syncWaiter = new Child(
        childConfig(space, { mode: "sync", computeMs: 50, waitTimeoutMs: 30_000 }),
      );
      children.push(syncWaiter);
      let calls = 0;
      const here = memoize(async (id: number) => {
        calls++;
        await sleep(50);
        return { id, pid: process.pid };
      }, { cache: space.open(), waitTimeoutMs: 30_000 });
      const waiting = here(7);
      await syncWaiter.waitFor("calling");
      assert.equal(
        await pendingAfter(waiting, 300),
        true,
        "the waiter did not wait for the claimant",
      );
      assert.equal(syncWaiter.computed, false, "the sync waiter did not wait for the claimant");

      claimant.kill();
      const [mine, theirs] = await Promise.all([waiting, syncWaiter.result(60_000)]);
      // Taken over after the kill, not waited out (the bound is 30 s).
      assert.equal(here.stats().remoteTimeouts + theirs.stats.remoteTimeouts, 0);
      // One waiter took the claim over and computed; the other got its value.
      assert.equal(calls + (syncWaiter.computed ? 1 : 0), 1);
      assert.equal(here.stats().remoteTakeovers + theirs.stats.remoteTakeovers, 1);
      assert.deepEqual(mine, theirs.value);
    } finally {
      for (const child of children) child.kill();
      space.dispose();
    }
  },
  { timeoutMs: 60_000 },
);

test(
  "memoize shared: a claimant that outlives waitTimeoutMs does not hold its waiters longer",
  async () => {
    const space = scratch();
    const claimant = new Child(childConfig(space, { computeMs: 60_000 }));
    try {
      await claimant.waitFor("computing");
      const f = memoize(async (id: number) => ({ id, pid: process.pid }), {
        cache: space.open(),
        waitTimeoutMs: 400,
      });
      const started = performance.now();
      const value = await f(7);
      const waited = performance.now() - started;
      assert.equal(value.pid, process.pid);
      // At least the bound (an upper bound on time would race a slow
      // machine; the counter says the wait ended by the bound).
      assert.ok(waited >= 395, `waited only ${waited} ms for a 400 ms timeout`);
      assert.equal(f.stats().remoteTimeouts, 1);
    } finally {
      claimant.kill();
      await claimant.exited;
      space.dispose();
    }
  },
  { timeoutMs: 60_000 },
);

test("memoize shared: a later process gets a hit without computing", async () => {
  const space = scratch();
  try {
    const first = new Child(childConfig(space, { computeMs: 10 }));
    const firstResult = await first.result();
    const second = new Child(childConfig(space, { computeMs: 10 }));
    const secondResult = await second.result();
    assert.equal(second.computed, false);
    assert.equal(secondResult.stats.hits, 1);
    assert.deepEqual(secondResult.value, firstResult.value);
  } finally {
    space.dispose();
  }
}, { timeoutMs: 60_000 });
