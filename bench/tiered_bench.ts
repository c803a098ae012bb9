/**
 * TieredCache costs, under whichever runtime runs this file, on a private
 * redis-server (Debian's, on loopback, no persistence):
 *
 * - **get hit**: a fresh L1 entry, against `SharedCache.get` of the same
 *   value and an in-process `Map`, and bentocache's L1 hit (its memory
 *   driver, same Redis behind it). The Redis commands sent during the hits
 *   are counted: a tiered hit must send none.
 * - **miss served from L2**: the L1 copy is deleted before each get, so it
 *   is the L2 read script plus the fill; against bentocache with an L2-only
 *   store (its L2 read).
 * - **invalidation latency**: a `set` on this host until a process of
 *   another host (another L1 directory) reads the new value, p50 and p99,
 *   for TieredCache and for bentocache (its Redis bus), each with one remote
 *   process of this runtime polling `get`.
 *
 * Run: `bun run bench/tiered_bench.ts` or `deno run -A bench/tiered_bench.ts`
 * (`--rounds N`, default 300, for the latency).
 */
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { BentoCache, bentostore } from "bentocache";
import { memoryDriver } from "bentocache/drivers/memory";
import { redisBusDriver, redisDriver } from "bentocache/drivers/redis";
import { numberArg, parseArgs, ROOT, runtime, startRedis, STRING_64 } from "./_common.ts";
import { SharedCache, TieredCache, type TieredTransport } from "../mod.ts";
import { clientTransport } from "../tests/_redis.ts";

const args = parseArgs();
const rounds = numberArg(args, "rounds", 300);
const redis = await startRedis();
const dirs = [
  mkdtempSync(join(tmpdir(), "tiered-bench-a-")),
  mkdtempSync(join(tmpdir(), "tiered-bench-b-")),
];
const name = `tiered-bench-${process.pid}`;
const L1 = { capacity: 10_000, maxKeyBytes: 256, maxValueBytes: 4096 };
const KEYS = Array.from({ length: 64 }, (_, i) => `user:${1000 + i}`);
let turn = 0;
const nextKey = () => KEYS[turn++ & 63];

/** Counts the commands sent through a transport (heartbeats and bus publishes apart). */
class Counting implements TieredTransport {
  commands = 0;
  constructor(readonly inner: TieredTransport) {}
  send(args: readonly string[]): Promise<unknown> {
    if (args[0] !== "PUBLISH") this.commands++;
    return this.inner.send(args);
  }
  subscribe(...a: Parameters<TieredTransport["subscribe"]>) {
    return this.inner.subscribe(...a);
  }
  close() {
    return this.inner.close();
  }
}

const connection = { host: "127.0.0.1", port: redis.port };
const counting = new Counting(await clientTransport(redis.url));
const tiered = await TieredCache.open(name, {
  l1: { ...L1, dir: dirs[0] },
  l2: { transport: counting },
});
const raw = SharedCache.open(name, { ...L1, dir: dirs[0] });
const shared = SharedCache.open(`${name}-plain`, { ...L1, dir: dirs[0] });
const map = new Map<string, string>();
const bento = new BentoCache({
  default: "b",
  stores: {
    b: bentostore()
      .useL1Layer(memoryDriver({ maxSize: "16mb" }))
      .useL2Layer(redisDriver({ connection }))
      .useBus(redisBusDriver({ connection })),
  },
});
const bentoL2 = new BentoCache({
  default: "b",
  stores: { b: bentostore().useL2Layer(redisDriver({ connection })) },
});
for (const key of KEYS) {
  await tiered.set(key, STRING_64);
  shared.set(key, STRING_64);
  map.set(key, STRING_64);
  await bento.set({ key, value: STRING_64 });
  await bentoL2.set({ key: `l2:${key}`, value: STRING_64 });
}

try {
  const hitsBefore = tiered.stats().l1Hits;
  group("get hit (64 B string, 64 keys)", () => {
    summary(() => {
      bench("Map.get", () => do_not_optimize(map.get(nextKey())));
      bench("SharedCache.get", () => do_not_optimize(shared.get(nextKey())));
      bench("TieredCache.get (L1 hit)", async () => do_not_optimize(await tiered.get(nextKey())));
      bench(
        "bentocache get (L1 hit)",
        async () => do_not_optimize(await bento.get({ key: nextKey() })),
      );
    });
  });
  group("miss served from L2", () => {
    summary(() => {
      bench("TieredCache.get (L1 deleted first)", async () => {
        const key = nextKey();
        raw.delete(key);
        do_not_optimize(await tiered.get(key));
      });
      bench("SharedCache.delete alone (to subtract)", () => do_not_optimize(raw.delete(nextKey())));
      bench(
        "bentocache get (L2-only store)",
        async () => do_not_optimize(await bentoL2.get({ key: `l2:${nextKey()}` })),
      );
    });
  });
  await run();
  console.log(
    `\nTieredCache L1 hits during the run: ${tiered.stats().l1Hits - hitsBefore}`,
  );
  // The miss group deleted L1 copies: one pass refills them (from L2),
  // then the hits alone are counted.
  for (const key of KEYS) await tiered.get(key);
  const c0 = counting.commands;
  for (let i = 0; i < 100_000; i++) await tiered.get(KEYS[i & 63]);
  console.log(`Redis commands sent by 100,000 tiered L1 hits: ${counting.commands - c0}`);

  console.log(
    `\ninvalidation latency: set on host A until a process of host B reads the new value (${rounds} rounds, ${runtime})`,
  );
  for (const kind of ["tiered", "bento"] as const) {
    const latencies = await latency(kind);
    latencies.sort((x, y) => x - y);
    const at = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
    console.log(
      `${kind === "tiered" ? "TieredCache" : "bentocache "}: p50 ${at(0.5).toFixed(2)} ms, p99 ${
        at(0.99).toFixed(2)
      } ms, max ${at(1).toFixed(2)} ms`,
    );
  }
} finally {
  await tiered.close();
  raw.close();
  shared.close();
  await bento.disconnectAll();
  await bentoL2.disconnectAll();
  await counting.close();
  await redis.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

/** Runs `rounds` sets here, each timed until the remote host's process reads it. */
async function latency(kind: "tiered" | "bento"): Promise<number[]> {
  const script = join(ROOT, "bench/_tiered_host.ts");
  const [cmd, argv] = runtime === "deno"
    ? [join(ROOT, "node_modules/.bin/deno"), ["run", "-A", script]]
    : [process.execPath, [script]];
  const child = spawn(cmd, [...argv, kind, redis.url, name, dirs[1]], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the ${kind} host process ended`);
    return value as string;
  };
  try {
    if ((await next()) !== "ready") throw new Error("the host process did not start");
    const out: number[] = [];
    const key = `lat:${kind}`;
    for (let i = 0; i < rounds + 10; i++) {
      // The remote host reads the current value (from its L1 from the
      // second round on), then polls until it reads the new one.
      const value = `v${i}`;
      child.stdin!.write(`${key} ${value}\n`);
      if ((await next()) !== "polling") throw new Error("unexpected reply");
      const t0 = performance.timeOrigin + performance.now();
      if (kind === "tiered") await tiered.set(key, value);
      else await bento.set({ key, value });
      const seen = Number((await next()).split(" ")[3]);
      // The first rounds warm up (connections, JIT).
      if (i >= 10) out.push(seen - t0);
    }
    return out;
  } finally {
    child.stdin!.end();
    await new Promise((resolve) => child.once("exit", resolve));
  }
}
