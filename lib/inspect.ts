/**
 * Looking at caches from outside: list the caches of a directory and read
 * one's configuration, state and counters summed over all its handles,
 * without opening a handle on it (what the `shm-cache` CLI's `ls` and
 * `stats` show).
 *
 * @module
 */

import { readdirSync } from "node:fs";
import { type CacheStats, checkDir, checkName, statsFromVector } from "./cache.ts";
import { errorForStatus, Status } from "./errors.ts";
import { loadNative } from "./ffi/load.ts";

/** What {@linkcode inspectCache} reads about a cache. */
export interface CacheInfo {
  /** The cache's name. */
  name: string;
  /** The size of its file in bytes (header, per-handle counters, table and slots). */
  fileBytes: number;
  /** Maximum number of entries. */
  capacity: number;
  /** Maximum encoded key size in bytes. */
  maxKeyBytes: number;
  /** Maximum encoded value size in bytes. */
  maxValueBytes: number;
  /** The default time to live in milliseconds; 0 = none. */
  ttlMs: number;
  /** Entries stored now (expired entries count until removed). */
  size: number;
  /** Handles that have the cache open now, in any process (held liveness slots). */
  handles: number;
  /** The PIDs of those handles' processes (as each recorded it at open; one per handle). */
  handlePids: number[];
  /** The PID recorded by the writer lock's owner; 0 when the lock is free. */
  lockOwnerPid: number;
  /** Whether the lock's owner is alive (false when free; a dead owner's lock is recovered by the next writer). */
  lockOwnerAlive: boolean;
  /** A writer is mid-mutation now (or died there and nobody has recovered yet). */
  writerActive: boolean;
  /** Everything `stats()` counts, summed over every handle that ever had the cache open. */
  stats: CacheStats;
}

/** The f64 that shmc_inspect fills (zig/src/exports.zig inspect_len). */
const INSPECT_LEN = 24;
const STATS_LEN = 16;
/** Liveness slots of a cache (zig/src/liveness.zig slots_max). */
const HANDLES_MAX = 4095;
const ERR_CAP = 512;
const PATH_CAP = 4096;
const EXT = ".shmc";

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * Reads the cache `name` without opening a handle on it: it takes no
 * handle slot (so it is not counted among the handles), never takes the
 * writer lock, and maps the file read-only. Openers wait for the moment
 * it reads (well under a millisecond).
 *
 * @param name The cache's name.
 * @param options `dir`: the cache directory (default as for `SharedCache.open`).
 * @returns What the cache holds, who has it open, and its counters summed over all handles.
 * @throws {CacheError} `NotFound` when there is no such cache; `Corrupt`, `Mismatch` (another format) or `UnsafeDirectory` as `open` would.
 * @example
 * ```ts
 * import { inspectCache, SharedCache } from "./mod.ts";
 * using cache = SharedCache.open("inspect-doc", { capacity: 10, maxKeyBytes: 16, maxValueBytes: 16 });
 * cache.get("a");
 * const info = inspectCache("inspect-doc");
 * info.handles; // 1 (this process's handle)
 * info.stats.misses; // 1
 * ```
 */
export function inspectCache(name: string, options: { dir?: string } = {}): CacheInfo {
  checkName(name);
  const dir = checkDir(options.dir);
  const native = loadNative();
  const dirBytes = textEncoder.encode(dir);
  const nameBytes = textEncoder.encode(name);
  const out = new Float64Array(INSPECT_LEN);
  const pids = new Uint32Array(HANDLES_MAX);
  const err = new Uint8Array(ERR_CAP);
  const status = new Int32Array(2);
  const rc = native.shmc_inspect(
    dirBytes,
    dirBytes.length,
    nameBytes,
    nameBytes.length,
    out,
    pids,
    pids.length,
    err,
    ERR_CAP,
    status,
  );
  if (rc < 0) throw errorForStatus(status[0], textDecoder.decode(err.subarray(0, status[1])));
  const handles = out[STATS_LEN + 4];
  return {
    name,
    fileBytes: out[STATS_LEN],
    capacity: out[13],
    maxKeyBytes: out[STATS_LEN + 1] - 1,
    maxValueBytes: out[STATS_LEN + 2] - 1,
    ttlMs: out[STATS_LEN + 3],
    size: out[12],
    handles,
    handlePids: Array.from(pids.subarray(0, Math.min(handles, HANDLES_MAX))),
    lockOwnerPid: out[STATS_LEN + 5] === 0 ? 0 : out[14],
    lockOwnerAlive: out[STATS_LEN + 6] === 1,
    writerActive: out[STATS_LEN + 7] === 1,
    stats: statsFromVector(out.subarray(0, STATS_LEN), 0),
  };
}

/**
 * The cache directory: `dir`, or the per-user default that
 * `SharedCache.open` uses. `undefined` when it does not exist.
 *
 * @param options `dir`: a directory to check instead of the default.
 * @returns The directory's path, checked as an open checks it.
 * @throws {CacheError} `UnsafeDirectory` when it is a symbolic link, not ours or open to others.
 * @example
 * ```ts
 * import { cacheDirectory } from "./mod.ts";
 * cacheDirectory(); // e.g. "/dev/shm/shm-cache-1000"
 * ```
 */
export function cacheDirectory(options: { dir?: string } = {}): string | undefined {
  const dir = checkDir(options.dir);
  const native = loadNative();
  const dirBytes = textEncoder.encode(dir);
  const out = new Uint8Array(PATH_CAP);
  const err = new Uint8Array(ERR_CAP);
  const status = new Int32Array(2);
  const rc = native.shmc_dir(dirBytes, dirBytes.length, out, PATH_CAP, err, ERR_CAP, status);
  if (rc >= 0) return textDecoder.decode(out.subarray(0, rc));
  if (status[0] === Status.notFound) return undefined;
  throw errorForStatus(status[0], textDecoder.decode(err.subarray(0, status[1])));
}

/**
 * The names of the caches in the cache directory, sorted; none when the
 * directory does not exist.
 *
 * @param options `dir`: the cache directory (default as for `SharedCache.open`).
 * @returns Cache names, to pass to `inspectCache` or `SharedCache.open`.
 * @example
 * ```ts
 * import { inspectCache, listCaches } from "./mod.ts";
 * for (const name of listCaches()) console.log(name, inspectCache(name).size);
 * ```
 */
export function listCaches(options: { dir?: string } = {}): string[] {
  const path = cacheDirectory(options);
  if (path === undefined) return [];
  const names: string[] = [];
  for (const file of readdirSync(path)) {
    if (!file.endsWith(EXT)) continue;
    const name = file.slice(0, -EXT.length);
    try {
      checkName(name);
    } catch {
      continue; // not a name shm-cache would have made
    }
    names.push(name);
  }
  return names.sort();
}
