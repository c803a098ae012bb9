/**
 * Throughput of N processes sharing one store: shm-cache, lmdb and Redis,
 * read-heavy (95% get, 5% set) and mixed (50% set) workloads, total and per
 * process.
 *
 * ```sh
 * bun run bench/multiprocess.ts                       # workers under Bun
 * deno run -A bench/multiprocess.ts --runtime deno    # workers under Deno
 * ```
 *
 * Options: `--runtime bun|deno` (the workers' runtime; default: this one),
 * `--procs 1,2`, `--duration-ms 2000`, `--rounds 3`,
 * `--stores shm-cache,lmdb,redis,redis-pipelined`, `--workloads read-heavy,mixed`,
 * `--out FILE` (default bench/results/multiprocess-<runtime>.json).
 *
 * The parent creates and fills each store (10,000 keys "user:" + id, 64-byte
 * string values), starts the Redis server, then for every configuration
 * spawns N workers of the chosen runtime (this same file with `--worker`).
 * Each worker opens the store, runs its workload for 300 ms to warm up,
 * says "ready", and waits; once all are ready the parent sends every worker
 * the same start time, half a second ahead, and each runs for exactly the
 * duration from then on and reports its operation count. Keys follow a
 * Zipf (s = 0.99) stream seeded per worker. Every worker yields to its event
 * loop every 4,096 operations (as a server would between requests), which
 * also lets lmdb-js renew its read transaction. `redis` awaits each call
 * (one request handler's pattern); `redis-pipelined` sends the stream in
 * batches of 100 operations (pipelined under Bun, MGET + MSET under Deno),
 * Redis's best throughput. Figures: the median over rounds of the total, its spread, and
 * the scaling N procs / 1 proc taken within each round.
 *
 * The machine has 2 cores; with Redis, its server is a process too, so 2
 * workers + the server share 2 cores.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { SharedCache } from "../mod.ts";
import {
  freshDir,
  makeIds,
  nowNs,
  numberArg,
  packageVersion,
  parseArgs,
  type RedisServer,
  redisServerPath,
  resultHeader,
  rng,
  ROOT,
  runtime,
  shuffled,
  type Spread,
  spread,
  startRedis,
  STRING_64,
  thisCommand,
  writeResult,
  zipfStream,
} from "./_common.ts";
import { LMDB_OPTIONS, PIPELINE, SHM_GEOMETRY } from "./_contenders.ts";

type StoreId = "shm-cache" | "lmdb" | "redis" | "redis-pipelined";
type Workload = "read-heavy" | "mixed";

const KEYS = 10_000;
const CAPACITY = 4 * KEYS;
const STREAM = 1 << 16;
const SET_SHARE: Record<Workload, number> = { "read-heavy": 0.05, mixed: 0.5 };
const WARM_UP_MS = 300;
const YIELD_EVERY = 4096;

/** The operations of one worker, behind one shape (each worker uses one store). */
interface WorkerStore {
  async: boolean;
  get(key: string): unknown;
  set(key: string, value: string): unknown;
  close(): unknown;
  /**
   * Batching stores: gets `getKeys` and sets `setKeys` (to STRING_64) in one
   * batch of round trips; resolves with the number of hits.
   */
  batch?(getKeys: string[], setKeys: string[]): Promise<number>;
}

async function openStore(store: StoreId, dir: string, redisUrl: string): Promise<WorkerStore> {
  if (store === "shm-cache") {
    const cache = SharedCache.open("mp", { capacity: CAPACITY, ...SHM_GEOMETRY, dir });
    return {
      async: false,
      get: (k) => cache.get(k),
      set: (k, v) => cache.set(k, v),
      close: () => cache.close(),
    };
  }
  if (store === "lmdb") {
    const { open } = await import("lmdb");
    const root = open({ path: join(dir, "lmdb"), ...LMDB_OPTIONS });
    const db = root.openDB<string, string>("strings", { encoding: "string" });
    return {
      async: false,
      get: (k) => db.get(k),
      set: (k, v) => db.putSync(k, v),
      close: () => root.close(),
    };
  }
  if (store === "redis-pipelined") return await redisBatching(redisUrl);
  if (runtime === "bun") {
    // deno-lint-ignore no-explicit-any
    const client = new (globalThis as any).Bun.RedisClient(redisUrl);
    await client.connect();
    return {
      async: true,
      get: (k) => client.get(k),
      set: (k, v) => client.set(k, v),
      close: () => client.close(),
    };
  }
  const { createClient } = await import("redis");
  const client = createClient({ url: redisUrl });
  await client.connect();
  return {
    async: true,
    get: (k) => client.get(k),
    set: (k, v) => client.set(k, v),
    close: () => client.destroy(),
  };
}

/**
 * Redis, PIPELINE operations per batch: under Bun every call of the batch is
 * issued at once (Bun.RedisClient pipelines them); under Deno one MGET and
 * one MSET per batch (node-redis's pipelining of concurrent calls is slow
 * under Deno; see bench/_contenders.ts).
 */
async function redisBatching(redisUrl: string): Promise<WorkerStore> {
  const single = await openStore("redis", "", redisUrl);
  if (runtime === "bun") {
    return {
      ...single,
      batch: async (getKeys, setKeys) => {
        const [got] = await Promise.all([
          Promise.all(getKeys.map((k) => single.get(k))),
          Promise.all(setKeys.map((k) => single.set(k, STRING_64))),
        ]);
        return got.filter((v) => v != null).length;
      },
    };
  }
  const { createClient } = await import("redis");
  const client = createClient({ url: redisUrl });
  await client.connect();
  return {
    ...single,
    batch: async (getKeys, setKeys) => {
      const [got] = await Promise.all([
        getKeys.length > 0 ? client.mGet(getKeys) : [],
        setKeys.length > 0
          ? client.mSet(setKeys.map((k) => [k, STRING_64] as [string, string]))
          : "",
      ]);
      return got.filter((v) => v != null).length;
    },
    close: async () => {
      client.destroy();
      await single.close();
    },
  };
}

// ---------------------------------------------------------------- the worker

interface WorkerResult {
  ops: number;
  gets: number;
  hits: number;
  sets: number;
  seconds: number;
}

const yieldToLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

async function runFor(
  s: WorkerStore,
  ids: string[],
  seq: Uint32Array,
  isSet: Uint8Array,
  endNs: number,
): Promise<WorkerResult> {
  let i = 0, gets = 0, hits = 0, sets = 0;
  const t0 = nowNs();
  const getKeys: string[] = [];
  const setKeys: string[] = [];
  while (true) {
    if (s.batch !== undefined) {
      getKeys.length = 0;
      setKeys.length = 0;
      for (let j = 0; j < PIPELINE; j++) {
        i = (i + 1) & (STREAM - 1);
        (isSet[i] === 1 ? setKeys : getKeys).push("user:" + ids[seq[i]]);
      }
      hits += await s.batch(getKeys, setKeys);
      gets += getKeys.length;
      sets += setKeys.length;
    } else if (s.async) {
      for (let j = 0; j < 64; j++) {
        i = (i + 1) & (STREAM - 1);
        const key = "user:" + ids[seq[i]];
        if (isSet[i] === 1) {
          await s.set(key, STRING_64);
          sets++;
        } else {
          gets++;
          if ((await s.get(key)) != null) hits++;
        }
      }
    } else {
      for (let j = 0; j < YIELD_EVERY; j++) {
        i = (i + 1) & (STREAM - 1);
        const key = "user:" + ids[seq[i]];
        if (isSet[i] === 1) {
          s.set(key, STRING_64);
          sets++;
        } else {
          gets++;
          if (s.get(key) !== undefined) hits++;
        }
      }
      await yieldToLoop();
    }
    if (nowNs() >= endNs) break;
  }
  return { ops: gets + sets, gets, hits, sets, seconds: (nowNs() - t0) / 1e9 };
}

async function worker(args: Map<string, string>): Promise<void> {
  const store = args.get("store") as StoreId;
  const workload = args.get("workload") as Workload;
  const durationMs = numberArg(args, "duration-ms", 2000);
  const seed = numberArg(args, "seed", 1);
  const s = await openStore(store, args.get("dir")!, args.get("redis-url") ?? "");
  const ids = makeIds(KEYS, 1);
  const seq = zipfStream(KEYS, 0.99, STREAM, 100 + seed);
  const random = rng(200 + seed);
  const isSet = new Uint8Array(STREAM);
  for (let i = 0; i < STREAM; i++) isSet[i] = random() < SET_SHARE[workload] ? 1 : 0;

  await runFor(s, ids, seq, isSet, nowNs() + WARM_UP_MS * 1e6);
  const go = new Promise<number>((resolve) => {
    let text = "";
    process.stdin.on("data", (chunk: Uint8Array | string) => {
      text += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
      const match = /go (\d+)\n/.exec(text);
      if (match) resolve(Number(match[1]));
    });
  });
  process.stdout.write("ready\n");
  const startAt = await go;
  while (Date.now() < startAt) {
    // Spin to the common start (at most half a second).
  }
  const result = await runFor(s, ids, seq, isSet, nowNs() + durationMs * 1e6);
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
  await s.close();
  process.exit(0);
}

// ---------------------------------------------------------------- the parent

function runtimeCommand(target: "bun" | "deno"): string[] {
  const local = join(ROOT, "node_modules", ".bin", target);
  const binary = existsSync(local) ? local : target;
  const script = join(ROOT, "bench", "multiprocess.ts");
  return target === "bun" ? [binary, "run", script] : [binary, "run", "-A", script];
}

interface Spawned {
  ready: Promise<void>;
  result: Promise<WorkerResult>;
  send(line: string): void;
  kill(): void;
}

function spawnWorker(command: string[], workerArgs: string[]): Spawned {
  const child = spawn(command[0], [...command.slice(1), "--worker", ...workerArgs], {
    stdio: ["pipe", "pipe", "inherit"],
    cwd: ROOT,
  });
  let out = "";
  let onReady: () => void = () => {};
  let onResult: (r: WorkerResult) => void = () => {};
  let onFail: (e: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  const result = new Promise<WorkerResult>((resolve, reject) => {
    onResult = resolve;
    const previous = onFail;
    onFail = (e) => {
      previous(e);
      reject(e);
    };
  });
  result.catch(() => {});
  ready.catch(() => {});
  child.stdout!.on("data", (chunk: Uint8Array | string) => {
    out += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
    if (out.includes("ready\n")) onReady();
    const match = /result (\{.*\})\n/.exec(out);
    if (match) onResult(JSON.parse(match[1]));
  });
  child.once(
    "exit",
    (code) => onFail(new Error(`worker exited with ${code} before reporting: ${out.slice(-200)}`)),
  );
  return {
    ready,
    result,
    send: (line) => child.stdin!.write(line),
    kill: () => child.kill("SIGKILL"),
  };
}

interface RunResult {
  store: StoreId;
  workload: Workload;
  procs: number;
  round: number;
  totalOpsPerSecond: number;
  perProcessOpsPerSecond: number[];
  hitRate: number;
}

async function runOnce(
  command: string[],
  store: StoreId,
  workload: Workload,
  procs: number,
  round: number,
  dir: string,
  redisUrl: string,
  durationMs: number,
): Promise<RunResult> {
  const workers: Spawned[] = [];
  try {
    for (let p = 0; p < procs; p++) {
      workers.push(spawnWorker(command, [
        "--store",
        store,
        "--workload",
        workload,
        "--dir",
        dir,
        "--redis-url",
        redisUrl || "none",
        "--duration-ms",
        String(durationMs),
        "--seed",
        String(round * 16 + p + 1),
      ]));
    }
    await Promise.all(workers.map((w) => w.ready));
    const startAt = Date.now() + 500;
    for (const w of workers) w.send(`go ${startAt}\n`);
    const results = await Promise.all(workers.map((w) => w.result));
    const per = results.map((r) => r.ops / r.seconds);
    const gets = results.reduce((a, r) => a + r.gets, 0);
    const hits = results.reduce((a, r) => a + r.hits, 0);
    return {
      store,
      workload,
      procs,
      round,
      totalOpsPerSecond: per.reduce((a, b) => a + b, 0),
      perProcessOpsPerSecond: per,
      hitRate: gets === 0 ? 1 : hits / gets,
    };
  } finally {
    for (const w of workers) w.kill();
  }
}

async function fill(store: StoreId, dir: string, redisUrl: string): Promise<void> {
  const s = await openStore(store, dir, redisUrl);
  const ids = shuffled(makeIds(KEYS, 1), 4);
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500).map((id) => s.set("user:" + id, STRING_64));
    if (s.async) await Promise.all(chunk);
  }
  await s.close();
}

async function parent(args: Map<string, string>): Promise<void> {
  const started = Date.now();
  const target = (args.get("runtime") ?? runtime) as "bun" | "deno";
  if (target !== "bun" && target !== "deno") {
    throw new RangeError(`--runtime must be bun or deno, got ${target}`);
  }
  const procsList = (args.get("procs") ?? "1,2").split(",").map(Number);
  const durationMs = numberArg(args, "duration-ms", 2000);
  const rounds = numberArg(args, "rounds", 3);
  const stores = (args.get("stores") ?? "shm-cache,lmdb,redis,redis-pipelined")
    .split(",") as StoreId[];
  const usesRedis = () => stores.includes("redis") || stores.includes("redis-pipelined");
  if (usesRedis() && redisServerPath() === undefined) {
    process.stderr.write("redis-server is not installed: Redis is left out of this run\n");
    for (const id of ["redis", "redis-pipelined"] as const) {
      if (stores.includes(id)) stores.splice(stores.indexOf(id), 1);
    }
  }
  const workloads = (args.get("workloads") ?? "read-heavy,mixed").split(",") as Workload[];
  const out = args.get("out") ?? `multiprocess-${target}.json`;
  const command = runtimeCommand(target);

  const dir = freshDir();
  let redis: RedisServer | undefined;
  const runs: RunResult[] = [];
  try {
    if (usesRedis()) redis = await startRedis();
    for (const store of stores) await fill(store, dir, redis?.url ?? "");
    for (let round = 1; round <= rounds; round++) {
      for (const store of stores) {
        for (const workload of workloads) {
          for (const procs of procsList) {
            const r = await runOnce(
              command,
              store,
              workload,
              procs,
              round,
              dir,
              redis?.url ?? "",
              durationMs,
            );
            runs.push(r);
            process.stderr.write(
              `round ${round} ${store} ${workload} x${procs}: ${
                (r.totalOpsPerSecond / 1e6).toFixed(3)
              } Mops/s total (${
                r.perProcessOpsPerSecond.map((x) => (x / 1e6).toFixed(3)).join(" + ")
              }), hit rate ${(r.hitRate * 100).toFixed(1)}%\n`,
            );
          }
        }
      }
    }
  } finally {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const summary: {
    store: StoreId;
    workload: Workload;
    procs: number;
    total: Spread;
    perProcess: Spread;
    scalingVsOne?: Spread;
    hitRate: number;
  }[] = [];
  for (const store of stores) {
    for (const workload of workloads) {
      const one = runs.filter((r) => r.store === store && r.workload === workload && r.procs === 1);
      for (const procs of procsList) {
        const these = runs.filter((r) =>
          r.store === store && r.workload === workload && r.procs === procs
        );
        const scaling = one.length === these.length && procs !== 1
          ? spread(these.map((r, i) => r.totalOpsPerSecond / one[i].totalOpsPerSecond))
          : undefined;
        summary.push({
          store,
          workload,
          procs,
          total: spread(these.map((r) => r.totalOpsPerSecond)),
          perProcess: spread(these.flatMap((r) => r.perProcessOpsPerSecond)),
          scalingVsOne: scaling,
          hitRate: these.reduce((a, r) => a + r.hitRate, 0) / these.length,
        });
      }
    }
  }
  const versions: Record<string, string> = {
    lmdb: packageVersion("lmdb"),
    redis: target === "bun"
      ? `Bun.RedisClient (Bun ${packageVersion("bun")}), redis-server ${redis?.version}`
      : `redis (node-redis) ${packageVersion("redis")}, redis-server ${redis?.version}`,
    workers: `${target} ${packageVersion(target)}`,
  };
  writeResult(out, {
    ...resultHeader("multiprocess", thisCommand("bench/multiprocess.ts"), versions),
    workerRuntime: target,
    method: {
      rounds,
      durationMs,
      procs: procsList,
      keys: KEYS,
      zipf: 0.99,
      warmUpMs: WARM_UP_MS,
      workloads: {
        "read-heavy": "95% get, 5% set (overwrite)",
        mixed: "50% get, 50% set (overwrite)",
      },
      stores: {
        "shm-cache":
          `SharedCache.open("mp", { capacity: ${CAPACITY}, maxKeyBytes: 64, maxValueBytes: 1024, dir })`,
        lmdb:
          'open({ path, noSync: true, useWritemap: true, compression: false }), strings in openDB({ encoding: "string" }); get / putSync',
        redis: `${redis?.config ?? "not run"}; every call awaited`,
        "redis-pipelined": `${redis?.config ?? "not run"}; batches of ${PIPELINE} operations (${
          target === "bun" ? "issued at once, auto-pipelined" : "one MGET and one MSET per batch"
        })`,
      },
      elapsedSeconds: Math.round((Date.now() - started) / 1000),
    },
    runs,
    summary,
  });
  console.log(
    `\nmultiprocess, workers under ${target}: total ops/s, median over ${rounds} rounds (min-max)`,
  );
  for (const s of summary) {
    const scaling = s.scalingVsOne ? `  x${s.scalingVsOne.median.toFixed(2)} vs 1 proc` : "";
    console.log(
      `  ${s.store.padEnd(10)} ${s.workload.padEnd(10)} ${s.procs} proc: ${
        (s.total.median / 1e6).toFixed(3)
      } Mops/s (${(s.total.min / 1e6).toFixed(3)}-${(s.total.max / 1e6).toFixed(3)}), per process ${
        (s.perProcess.median / 1e6).toFixed(3)
      }${scaling}`,
    );
  }
}

const args = parseArgs();
if (args.has("worker")) await worker(args);
else await parent(args);
