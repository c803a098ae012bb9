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
 * | lmdb | lmdb-js `open({ noSync: true, compression: false })` (msgpack values, its default encoding); writes with `putSync`/`removeSync`, which like a shm-cache `set` are visible to other processes when they return; `noSync` skips the fsync that a cache does not need |
 * | sqlite | `bun:sqlite` under Bun, `node:sqlite` under Deno; `journal_mode=WAL`, `synchronous=OFF` (no fsync); one `WITHOUT ROWID` table, prepared statements, values as TEXT/BLOB (objects as JSON) |
 * | redis | Debian's `redis-server` on loopback without persistence; Bun's built-in `RedisClient` under Bun, the `redis` npm client (node-redis) under Deno; every call awaited, the request-handler pattern |
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
}

export type ContenderId = "Map" | "lru-cache" | "shm-cache" | "lmdb" | "sqlite" | "redis";

export const ALL_CONTENDERS: readonly ContenderId[] = [
  "shm-cache",
  "Map",
  "lru-cache",
  "lmdb",
  "sqlite",
  "redis",
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

async function lmdb(setting: Setting): Promise<Contender> {
  const { open } = await import("lmdb");
  const db = open({ path: join(setting.dir, "lmdb"), noSync: true, compression: false });
  return {
    id: "lmdb",
    version: packageVersion("lmdb"),
    config:
      "open({ path, noSync: true, compression: false }) (msgpack values, the default); putSync/removeSync, visible to other processes on return, no fsync",
    async: false,
    get: (key) => db.get(key),
    getObject: (key) => db.get(key),
    getBytes: (key) => db.get(key),
    set: (key, value) => db.putSync(key, value),
    setObject: (key, value) => db.putSync(key, value),
    setBytes: (key, value) => db.putSync(key, value),
    delete: (key) => db.removeSync(key),
    close: () => db.close(),
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
  }
}
