/**
 * A process of one simulated host for tiered_multiprocess_test.ts: opens
 * TieredCache `name` with its L1 in `dir` and Redis at `url` (Bun's
 * RedisClient under Bun, the redis npm client under Deno), prints "ready",
 * then answers one JSON command per stdin line with `R <json>` on stdout.
 *
 * Commands: set, get, getOrSet (a 300 ms loader returning `value`), delete,
 * deleteByTag, clear, stats, and
 * `until {key, value, timeoutMs}`, which polls `get` until it returns
 * `value` and answers with the time it first did (Date.now()).
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { TieredCache } from "../mod.ts";
import { runtimeL2 } from "./_redis.ts";

const [name, dir, url] = process.argv.slice(2);
const { l2 } = await runtimeL2(url);
const cache = await TieredCache.open(name, {
  l1: { dir, capacity: 1_000, maxKeyBytes: 128, maxValueBytes: 4_096 },
  l2: { ...l2, timeoutMs: 500 },
  graceMs: 60_000,
  heartbeatMs: 100,
  electionMs: 20,
});

interface Command {
  id: number;
  op: string;
  key?: string;
  value?: unknown;
  tags?: string[];
  tag?: string;
  timeoutMs?: number;
}

async function run(c: Command): Promise<unknown> {
  switch (c.op) {
    case "set":
      return await cache.set(c.key!, c.value, { tags: c.tags });
    case "get":
      return await cache.get(c.key!);
    case "delete":
      return await cache.delete(c.key!);
    case "deleteByTag":
      return await cache.deleteByTag(c.tag!);
    case "clear":
      return await cache.clear();
    case "stats":
      return cache.stats();
    case "getOrSet":
      // A loader that takes a while, as a real one would: the other
      // processes' calls either wait for it or find its value.
      return await cache.getOrSet(c.key!, async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return c.value;
      });
    case "until": {
      const deadline = Date.now() + (c.timeoutMs ?? 10_000);
      const want = JSON.stringify(c.value);
      while (JSON.stringify((await cache.get(c.key!)) ?? null) !== want) {
        if (Date.now() > deadline) throw new Error(`${c.key} never became ${want}`);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return Date.now();
    }
    case "exit":
      await cache.close();
      setTimeout(() => process.exit(0), 0);
      return null;
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const c = JSON.parse(line) as Command;
  run(c).then(
    (result) => console.log(`R ${JSON.stringify({ id: c.id, ok: true, result: result ?? null })}`),
    (error) => console.log(`R ${JSON.stringify({ id: c.id, ok: false, error: String(error) })}`),
  );
});
console.log("ready");
