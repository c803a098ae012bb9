/**
 * The remote host of bench/tiered_bench.ts's invalidation latency: one
 * process, its own cache, polling `get` of the key it is told (yielding to
 * the event loop between polls, so that its bus listener runs), and
 * printing the time (performance.timeOrigin + now, ms) at which it first
 * reads each new value.
 *
 * Usage: `<runtime> bench/_tiered_host.ts tiered|bento <redis url> <name> <dir>`.
 * Prints "ready" when it can receive invalidations; then reads lines
 * "<key> <value>" on stdin, prints "polling" after its first read, and
 * "seen <key> <value> <ms>" once it reads that value.
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { setImmediate } from "node:timers";
import { TieredCache } from "../mod.ts";
import { runtimeL2 } from "../tests/_redis.ts";

const [kind, url, name, dir] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

let get: (key: string) => Promise<unknown>;
if (kind === "tiered") {
  const { l2 } = await runtimeL2(url);
  const cache = await TieredCache.open(name, {
    l1: { dir, capacity: 10_000, maxKeyBytes: 256, maxValueBytes: 4096 },
    l2,
    heartbeatMs: 200,
  });
  while (!cache.stats().busLive) await new Promise((resolve) => setTimeout(resolve, 5));
  get = (key) => cache.get(key);
} else {
  const { BentoCache, bentostore } = await import("bentocache");
  const { memoryDriver } = await import("bentocache/drivers/memory");
  const { redisBusDriver, redisDriver } = await import("bentocache/drivers/redis");
  const connection = { host: "127.0.0.1", port: Number(new URL(url).port) };
  const bento = new BentoCache({
    default: "b",
    stores: {
      b: bentostore()
        .useL1Layer(memoryDriver({ maxSize: "16mb" }))
        .useL2Layer(redisDriver({ connection }))
        .useBus(redisBusDriver({ connection })),
    },
  });
  // The bus subscribes on first use.
  await bento.get({ key: "warm-up" });
  get = (key) => bento.get({ key });
}

createInterface({ input: process.stdin }).on("line", async (line) => {
  const [key, value] = line.split(" ");
  // Read once (the old value, from L1 once it was read before), say so,
  // then read until the new value shows.
  let got = await get(key);
  console.log("polling");
  while (String(got) !== value) {
    await yieldToLoop();
    got = await get(key);
  }
  console.log(`seen ${key} ${value} ${now()}`);
});
process.stdin.on("end", () => process.exit(0));
console.log("ready");
