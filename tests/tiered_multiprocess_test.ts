/**
 * TieredCache across processes: two simulated hosts (L1 directories), each
 * with a Deno process (the redis npm client) and a Bun process (Bun's
 * RedisClient), on one real redis-server. Cross-host invalidation from
 * every writer to every reader, with its latency; one listener per host;
 * getOrSet from every process at once loads once per host at most;
 * the listener SIGKILLed and another process of the host taking over, the
 * entries filled before the takeover then stale.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { runtime, test } from "./_harness.ts";
import { root, type Runtime, runtimeCommand } from "./_proc.ts";
import { RedisServer, runtimeL2 } from "./_redis.ts";
import { TieredCache, type TieredCacheStats } from "../mod.ts";

const CHILD = join(root, "tests/_tiered_child.ts");

/** One host process, driven by JSON commands. */
class Proc {
  readonly label: string;
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #next = 0;
  #stderr = "";

  constructor(runtime: Runtime, host: string, args: string[]) {
    this.label = `${runtime}@${host}`;
    const [cmd, argv] = runtimeCommand(runtime, CHILD, args);
    this.proc = spawn(cmd, argv, { stdio: ["pipe", "pipe", "pipe"] });
    this.proc.stderr!.setEncoding("utf8");
    this.proc.stderr!.on("data", (chunk: string) => {
      if (this.#stderr.length < 20_000) this.#stderr += chunk;
    });
    let ready!: () => void;
    let failed!: (e: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    const timer = setTimeout(
      () => failed(new Error(`${this.label} not ready: ${this.#stderr}`)),
      30_000,
    );
    this.proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      const error = new Error(`${this.label} exited (${code ?? signal}): ${this.#stderr}`);
      failed(error);
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
    });
    createInterface({ input: this.proc.stdout! }).on("line", (line) => {
      if (line === "ready") {
        clearTimeout(timer);
        ready();
      } else if (line.startsWith("R ")) {
        const reply = JSON.parse(line.slice(2));
        const p = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        if (reply.ok) p?.resolve(reply.result);
        else p?.reject(new Error(`${this.label}: ${reply.error}`));
      }
    });
  }

  /** Sends a command; its reply within 30 s, or an error. */
  call<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#next;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.label}: no reply to ${op} in 30 s`));
      }, 30_000);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  stats(): Promise<TieredCacheStats> {
    return this.call<TieredCacheStats>("stats");
  }

  kill(signal: NodeJS.Signals): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      try {
        process.kill(this.proc.pid!, signal);
      } catch {
        // Gone.
      }
    }
  }
}

async function until(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The listeners among `procs` (one host's processes). */
async function listeners(procs: Proc[]): Promise<Proc[]> {
  const stats = await Promise.all(procs.map((p) => p.stats()));
  return procs.filter((_, i) => stats[i].listening && stats[i].busLive);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

test(
  "tiered across processes: two hosts of Deno and Bun processes stay coherent; a killed listener is replaced",
  async () => {
    const redis = await RedisServer.start();
    const dirs = [mkdtempSync(join(tmpdir(), "shmc-h1-")), mkdtempSync(join(tmpdir(), "shmc-h2-"))];
    const name = `tiered-mp-${process.pid}`;
    const procs: Proc[] = [];
    try {
      const hosts = dirs.map((dir, h) =>
        (["deno", "bun"] as const).map((rt) => {
          const p = new Proc(rt, `h${h + 1}`, [name, dir, redis.url]);
          procs.push(p);
          return p;
        })
      );
      await Promise.all(procs.map((p) => p.ready));
      for (const host of hosts) {
        await until(async () => (await listeners(host)).length === 1, "one live listener per host");
      }
      assert.equal((await listeners(hosts[0])).length, 1);
      assert.equal((await listeners(hosts[1])).length, 1);

      // Every process writes in turn; every other process must read the new value.
      const latencies: number[] = [];
      let n = 0;
      for (const writer of procs) {
        n++;
        const readers = procs.filter((p) => p !== writer);
        const seen = readers.map((r) => r.call<number>("until", { key: "k", value: n }));
        const before = Date.now();
        await writer.call("set", { key: "k", value: n });
        const at = await Promise.all(seen);
        for (let i = 0; i < readers.length; i++) {
          const sameHost = hosts.some((h) => h.includes(writer) && h.includes(readers[i]));
          if (!sameHost) latencies.push(Math.max(0, at[i] - before));
        }
      }
      latencies.sort((x, y) => x - y);
      console.log(
        `cross-host set visible after: p50 ${percentile(latencies, 0.5)} ms, max ${
          latencies.at(-1)
        } ms (${latencies.length} samples)`,
      );

      // getOrSet: the loader runs once per host, whichever runtime calls it.
      const loadsBefore = await Promise.all(procs.map(async (p) => (await p.stats()).loads));
      const got = await Promise.all(
        procs.map((p) => p.call("getOrSet", { key: "g", value: "loaded" })),
      );
      assert.deepEqual(got, ["loaded", "loaded", "loaded", "loaded"]);
      const loads = await Promise.all(
        procs.map(async (p, i) => (await p.stats()).loads - loadsBefore[i]),
      );
      for (const host of hosts) {
        const perHost = host.reduce((sum, p) => sum + loads[procs.indexOf(p)], 0);
        assert.ok(perHost <= 1, `one load per host at most, got ${JSON.stringify(loads)}`);
      }

      // Tags and clear reach every host.
      await procs[0].call("set", { key: "t", value: "tagged", tags: ["x"] });
      for (const p of procs) assert.equal(await p.call("get", { key: "t" }), "tagged");
      await procs[3].call("deleteByTag", { tag: "x" });
      for (const p of procs) await p.call("until", { key: "t", value: null });

      // The listener of host 1 dies; the other process of host 1 takes over.
      const [h1Listener] = await listeners(hosts[0]);
      const survivor = hosts[0].find((p) => p !== h1Listener)!;
      await procs[2].call("set", { key: "p", value: "before" });
      await survivor.call("until", { key: "p", value: "before" });
      const hitsBefore = (await survivor.stats()).l2Hits;
      h1Listener.kill("SIGKILL");
      await until(
        async () => (await listeners([survivor])).length === 1,
        "the survivor to take over",
      );
      // Filled before the takeover: stale now, read again from L2.
      assert.equal(await survivor.call("get", { key: "p" }), "before");
      assert.equal((await survivor.stats()).l2Hits, hitsBefore + 1);
      // And the new listener applies host 2's writes.
      await procs[3].call("set", { key: "p", value: "after" });
      await survivor.call("until", { key: "p", value: "after" });
      const stats = await survivor.stats();
      assert.ok(stats.invalidationsApplied >= 1, JSON.stringify(stats));
    } finally {
      for (const p of procs) p.kill("SIGKILL");
      await Promise.all(
        procs.map((p) =>
          p.proc.exitCode !== null || p.proc.signalCode !== null
            ? undefined
            : new Promise((resolve) => p.proc.once("exit", resolve))
        ),
      );
      await redis.close();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  },
  { timeoutMs: 120_000 },
);

test(
  "tiered across processes: a SIGSTOPped listener stops vouching for its host's L1 within its lease, and is replaced",
  async () => {
    const redis = await RedisServer.start();
    const dirs = [mkdtempSync(join(tmpdir(), "shmc-h1-")), mkdtempSync(join(tmpdir(), "shmc-h2-"))];
    const name = `tiered-stop-${process.pid}`;
    const child = new Proc(runtime, "h1", [name, dirs[0], redis.url]);
    const caches: TieredCache[] = [];
    const clients: Array<() => Promise<void>> = [];
    try {
      await child.ready;
      await until(async () => (await listeners([child])).length === 1, "the child to listen");
      const open = async (dir: string) => {
        const { l2, close } = await runtimeL2(redis.url);
        clients.push(close);
        const cache = await TieredCache.open(name, {
          l1: { dir, capacity: 1_000, maxKeyBytes: 128, maxValueBytes: 4_096 },
          l2: { ...l2, timeoutMs: 500 },
          heartbeatMs: 100,
          electionMs: 20,
        });
        caches.push(cache);
        return cache;
      };
      const h1 = await open(dirs[0]);
      const h2 = await open(dirs[1]);
      assert.equal(h1.stats().listening, false);
      await until(() => Promise.resolve(h2.stats().busLive), "h2's listener to be live");
      await h2.set("k", "v1");
      await until(async () => (await h1.get("k")) === "v1", "h1 to read v1");
      assert.ok(h1.stats().l1Hits + h1.stats().l2Hits > 0);
      // Host 1's listener stops: alive to the kernel, deaf to the bus.
      child.kill("SIGSTOP");
      await h2.set("k", "v2");
      // Within the listener's lease (three heartbeats) host 1 stops serving
      // what it filled under it, and its other process takes over.
      await until(async () => (await h1.get("k")) === "v2", "h1 to stop serving v1", 5_000);
      await until(() => Promise.resolve(h1.stats().busLive), "h1's instance to take over", 5_000);
      await h2.set("k", "v3");
      await until(async () => (await h1.get("k")) === "v3", "h1 to read v3", 5_000);
      // Resumed, the old listener sees it lost the claim: one listener again.
      child.kill("SIGCONT");
      await until(
        async () => !(await child.stats()).listening,
        "the resumed child to stop listening",
      );
      assert.equal(h1.stats().listening, true);
    } finally {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
      if (child.proc.exitCode === null && child.proc.signalCode === null) {
        await new Promise((resolve) => child.proc.once("exit", resolve));
      }
      await Promise.allSettled(caches.map((c) => c.close()));
      await Promise.allSettled(clients.map((close) => close()));
      await redis.close();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  },
  { timeoutMs: 60_000 },
);
