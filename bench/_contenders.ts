/**
 * The contenders of the peer benchmarks, each configured the way its users
 * configure it for caching, behind one small shape so that every benchmark
 * gives each of them the same keys and values.
 *
 * | contender | configuration, and why |
 * | --- | --- |
 * | Map | an in-process `Map` holding references: the floor, no copy, no sharing |
 * | lru-cache | `new LRUCache({ max })`, the usual in-process cache; `max` above the key count so nothing is evicted mid-benchmark |
 * | shm-cache | `SharedCache.open` in the run's directory under /dev/shm, geometry sized for the largest value (1 KiB) |
 * | lmdb | lmdb-js as its README recommends for this use: `open({ noSync: true, useWritemap: true, compression: false })` (no fsync, writes straight into the memory map: "virtually zero explicit I/O calls"); objects in a database with `sharedStructuresKey` (msgpack with the property names stored once, the README's advice for objects of one shape); strings in a database with `encoding: "string"` (UTF-8, no msgpack header; a faster get); bytes in a database with `encoding: "binary"`; writes with `putSync`/`removeSync`, which like a shm-cache `set` are visible to other processes when they return |
 * | sqlite | `bun:sqlite` under Bun, `node:sqlite` under Deno; `journal_mode=WAL`, `synchronous=OFF` (no fsync); one `WITHOUT ROWID` table, prepared statements, values as TEXT/BLOB (objects as JSON) |
 * | redis | Debian's `redis-server` on loopback without persistence; Bun's built-in `RedisClient` under Bun, the `redis` npm client (node-redis) under Deno; every call awaited, the request-handler pattern |
 * | redis-pipelined | the same client and server, `PIPELINE` operations at a time: under Bun, issued at once and awaited together (`Bun.RedisClient` pipelines calls issued in one tick); under Deno, one `MGET`, `MSET` or multi-key `DEL` per batch (node-redis's pipelining of concurrent calls is slow under Deno, its batched commands are not). Redis's throughput when a caller has many keys at hand, not one handler's latency |
 *
 * Objects go to SQLite and Redis as JSON text (what their users do);
 * shm-cache encodes them as JSON too (lib/codec.ts), lmdb as msgpack.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { join } from "node:path";
import { SharedCache } from "../mod.ts";
import { packageVersion, runtime } from "./_common.ts";

/** One store under test. Methods return a promise when `async`. */
export interface Contender {
  id: ContenderId;
  version: string;
  config: string;
  async: boolean;
  /** The value stored under a key of a string value (undefined or null on a miss). */
  get(key: string): unknown;
  getObject(key: string): unknown;
  getBytes(key: string): unknown;
  set(key: string, value: string): unknown;
  setObject(key: string, value: Record<string, unknown>): unknown;
  setBytes(key: string, value: Uint8Array): unknown;
  delete(key: string): unknown;
  close(): void | Promise<void>;
  /** Operations per batch when the contender batches (a pipeline), or undefined: one at a time. */
  pipeline?: number;
  /** With `pipeline`: one batch of `method` over `keys` (each set stores `value`). */
  many?(method: BatchMethod, keys: string[], value?: unknown): Promise<unknown>;
}

/** The methods a batch can run. */
export type BatchMethod =
  | "get"
  | "getObject"
  | "getBytes"
  | "set"
  | "setObject"
  | "setBytes"
  | "delete";

export type ContenderId =
  | "Map"
  | "lru-cache"
  | "shm-cache"
  | "lmdb"
  | "sqlite"
  | "redis"
  | "redis-pipelined";

/** How many calls `redis-pipelined` issues at once. */
export const PIPELINE = 100;

export const ALL_CONTENDERS: readonly ContenderId[] = [
  "shm-cache",
  "Map",
  "lru-cache",
  "lmdb",
  "sqlite",
  "redis",
  "redis-pipelined",
];

/** What the factories need. */
export interface Setting {
  dir: string;
  /** Entries the stores must hold without evicting. */
  capacity: number;
  redisUrl?: string;
  redisVersion?: string;
}

/** shm-cache geometry used by every benchmark: keys up to 64 bytes, values up to 1 KiB (+ the codec's tag). */
export const SHM_GEOMETRY = { maxKeyBytes: 64, maxValueBytes: 1024 } as const;

function shm(setting: Setting): Contender {
  const cache = SharedCache.open("peers", {
    capacity: setting.capacity,
    ...SHM_GEOMETRY,
    dir: setting.dir,
  });
  return {
    id: "shm-cache",
    version: `${packageVersion("../")} (this repository)`,
    config:
      `SharedCache.open("peers", { capacity: ${setting.capacity}, maxKeyBytes: 64, maxValueBytes: 1024, dir }) in the run's /dev/shm directory`,
    async: false,
    get: (key) => cache.get(key),
    getObject: (key) => cache.get(key),
    getBytes: (key) => cache.get(key),
    set: (key, value) => cache.set(key, value),
    setObject: (key, value) => cache.set(key, value),
    setBytes: (key, value) => cache.set(key, value),
    delete: (key) => cache.delete(key),
    close: () => cache.close(),
  };
}

function map(): Contender {
  const m = new Map<string, unknown>();
  return {
    id: "Map",
    version: `built in (${runtime})`,
    config: "new Map(), values stored by reference (the in-process floor: no copy, no sharing)",
    async: false,
    get: (key) => m.get(key),
    getObject: (key) => m.get(key),
    getBytes: (key) => m.get(key),
    set: (key, value) => m.set(key, value),
    setObject: (key, value) => m.set(key, value),
    setBytes: (key, value) => m.set(key, value),
    delete: (key) => m.delete(key),
    close: () => m.clear(),
  };
}

async function lru(setting: Setting): Promise<Contender> {
  const { LRUCache } = await import("lru-cache");
  const c = new LRUCache<string, NonNullable<unknown>>({ max: setting.capacity });
  return {
    id: "lru-cache",
    version: packageVersion("lru-cache"),
    config:
      `new LRUCache({ max: ${setting.capacity} }), values by reference; max above the key count, so no eviction`,
    async: false,
    get: (key) => c.get(key),
    getObject: (key) => c.get(key),
    getBytes: (key) => c.get(key),
    set: (key, value) => c.set(key, value),
    setObject: (key, value) => c.set(key, value),
    setBytes: (key, value) => c.set(key, value),
    delete: (key) => c.delete(key),
    close: () => c.clear(),
  };
}

/** lmdb-js's environment options as its README recommends for a cache (see the table above). */
export const LMDB_OPTIONS = { noSync: true, useWritemap: true, compression: false } as const;

/** The lmdb-js configuration, in words, for the reports. */
export const LMDB_CONFIG =
  'open({ path, noSync: true, useWritemap: true, compression: false }); strings in openDB({ encoding: "string" }), ' +
  'objects in openDB({ sharedStructuresKey }), bytes in openDB({ encoding: "binary" }); putSync/removeSync, ' +
  "visible to other processes on return, no fsync";

async function lmdb(setting: Setting): Promise<Contender> {
  const { open } = await import("lmdb");
  const root = open({ path: join(setting.dir, "lmdb"), ...LMDB_OPTIONS });
  const strings = root.openDB<string, string>("strings", { encoding: "string" });
  const objects = root.openDB<unknown, string>("objects", {
    sharedStructuresKey: Symbol.for("structures"),
  });
  const bytes = root.openDB<Uint8Array, string>("bytes", { encoding: "binary" });
  return {
    id: "lmdb",
    version: packageVersion("lmdb"),
    config: LMDB_CONFIG,
    async: false,
    get: (key) => strings.get(key),
    getObject: (key) => objects.get(key),
    getBytes: (key) => bytes.get(key),
    set: (key, value) => strings.putSync(key, value),
    setObject: (key, value) => objects.putSync(key, value),
    setBytes: (key, value) => bytes.putSync(key, value),
    // The benchmark deletes only string keys.
    delete: (key) => strings.removeSync(key),
    close: () => root.close(),
  };
}

/** The statements both SQLite bindings prepare. */
const SQL = {
  pragmas: ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = OFF"],
  create: "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID",
  get: "SELECT v FROM kv WHERE k = ?",
  set: "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
  delete: "DELETE FROM kv WHERE k = ?",
};

const SQLITE_CONFIG =
  "journal_mode=WAL, synchronous=OFF, CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID, " +
  "prepared statements, upsert for set; objects as JSON text, bytes as BLOB";

interface SqlStatement {
  get(...args: unknown[]): unknown;
  run(...args: unknown[]): unknown;
}

async function sqlite(setting: Setting): Promise<Contender> {
  const path = join(setting.dir, "sqlite.db");
  let version: string;
  let get: SqlStatement, set: SqlStatement, del: SqlStatement;
  let closeDb: () => void;
  if (runtime === "bun") {
    const moduleName = "bun:sqlite"; // through a variable, so Deno never resolves it
    const { Database } = await import(moduleName);
    const db = new Database(path);
    for (const pragma of SQL.pragmas) db.exec(pragma);
    db.exec(SQL.create);
    version = `bun:sqlite, SQLite ${
      (db.query("SELECT sqlite_version() AS v").get() as { v: string }).v
    }`;
    get = db.prepare(SQL.get);
    set = db.prepare(SQL.set);
    del = db.prepare(SQL.delete);
    closeDb = () => db.close();
  } else {
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(path);
    for (const pragma of SQL.pragmas) db.exec(pragma);
    db.exec(SQL.create);
    version = `node:sqlite, SQLite ${
      (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v
    }`;
    get = db.prepare(SQL.get) as unknown as SqlStatement;
    set = db.prepare(SQL.set) as unknown as SqlStatement;
    del = db.prepare(SQL.delete) as unknown as SqlStatement;
    closeDb = () => db.close();
  }
  const value = (key: string): unknown => (get.get(key) as { v: unknown } | null | undefined)?.v;
  return {
    id: "sqlite",
    version,
    config: SQLITE_CONFIG,
    async: false,
    get: value,
    getObject: (key) => {
      const text = value(key);
      return typeof text === "string" ? JSON.parse(text) : undefined;
    },
    getBytes: value,
    set: (key, v) => set.run(key, v),
    setObject: (key, v) => set.run(key, JSON.stringify(v)),
    setBytes: (key, v) => set.run(key, v),
    delete: (key) => del.run(key),
    close: closeDb,
  };
}

async function redis(setting: Setting): Promise<Contender> {
  if (setting.redisUrl === undefined) throw new Error("no Redis server");
  const server = `redis-server ${setting.redisVersion} on 127.0.0.1, no persistence`;
  if (runtime === "bun") {
    // deno-lint-ignore no-explicit-any
    const client = new (globalThis as any).Bun.RedisClient(setting.redisUrl);
    await client.connect();
    return {
      id: "redis",
      version: `Bun.RedisClient (Bun ${packageVersion("bun")}), ${server}`,
      config:
        "new Bun.RedisClient(url); GET/SET/DEL, each awaited; objects as JSON text, bytes with getBuffer",
      async: true,
      get: (key) => client.get(key),
      getObject: async (key) => {
        const text = await client.get(key);
        return text === null ? undefined : JSON.parse(text);
      },
      getBytes: (key) => client.getBuffer(key),
      set: (key, value) => client.set(key, value),
      setObject: (key, value) => client.set(key, JSON.stringify(value)),
      setBytes: (key, value) => client.set(key, value),
      delete: (key) => client.del(key),
      close: () => client.close(),
    };
  }
  const { createClient, RESP_TYPES } = await import("redis");
  const client = createClient({ url: setting.redisUrl });
  await client.connect();
  const binary = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  return {
    id: "redis",
    version: `redis (node-redis) ${packageVersion("redis")}, ${server}`,
    config:
      "createClient({ url }) from the redis npm package; GET/SET/DEL, each awaited; objects as JSON text, bytes as Buffer (withTypeMapping)",
    async: true,
    get: (key) => client.get(key),
    getObject: async (key) => {
      const text = await client.get(key);
      return text === null ? undefined : JSON.parse(text);
    },
    getBytes: (key) => binary.get(key),
    set: (key, value) => client.set(key, value),
    setObject: (key, value) => client.set(key, JSON.stringify(value)),
    setBytes: (key, value) =>
      client.set(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength)),
    delete: (key) => client.del(key),
    close: () => {
      client.destroy();
    },
  };
}

/**
 * Redis with `PIPELINE` operations per round trip: Bun's client pipelines
 * the calls issued in one tick; under Deno, node-redis's pipelining of
 * concurrent calls is slow, so batches are its MGET, MSET and DEL.
 */
async function redisPipelined(setting: Setting): Promise<Contender> {
  const r = await redis(setting);
  const one = r as unknown as Record<BatchMethod, (key: string, value?: unknown) => unknown>;
  let many: Contender["many"];
  let how: string;
  if (runtime === "bun") {
    how = `${PIPELINE} calls issued at once and awaited together (auto-pipelined)`;
    many = (method, keys, value) => Promise.all(keys.map((k) => one[method](k, value)));
  } else {
    const { createClient, RESP_TYPES } = await import("redis");
    const client = createClient({ url: setting.redisUrl });
    await client.connect();
    const binary = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    const pairs = (keys: string[], value: unknown) =>
      keys.map((k) => [k, value] as [string, string]);
    how = `batches of ${PIPELINE}: MGET for gets, MSET for sets, one DEL of ${PIPELINE} keys`;
    many = async (method, keys, value) => {
      switch (method) {
        case "get":
          return await client.mGet(keys);
        case "getObject":
          return (await client.mGet(keys)).map((t) => t === null ? undefined : JSON.parse(t));
        case "getBytes":
          return await binary.mGet(keys);
        case "set":
          return await client.mSet(pairs(keys, value));
        case "setObject":
          return await client.mSet(pairs(keys, JSON.stringify(value)));
        case "setBytes": {
          const v = value as Uint8Array;
          return await client.mSet(
            pairs(keys, Buffer.from(v.buffer, v.byteOffset, v.byteLength) as unknown as string),
          );
        }
        case "delete":
          return await client.del(keys);
      }
    };
    const close = r.close;
    r.close = () => {
      client.destroy();
      return close();
    };
  }
  return {
    ...r,
    id: "redis-pipelined",
    config: `${r.config.replace(", each awaited", "")}; ${how}`,
    pipeline: PIPELINE,
    many,
  };
}

/** Opens contender `id`. */
export async function openContender(id: ContenderId, setting: Setting): Promise<Contender> {
  switch (id) {
    case "shm-cache":
      return shm(setting);
    case "Map":
      return map();
    case "lru-cache":
      return await lru(setting);
    case "lmdb":
      return await lmdb(setting);
    case "sqlite":
      return await sqlite(setting);
    case "redis":
      return await redis(setting);
    case "redis-pipelined":
      return await redisPipelined(setting);
  }
}
