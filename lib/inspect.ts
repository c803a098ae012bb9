/**
 * Looking at caches from outside: list the caches of a directory and read
 * one's configuration, state and counters summed over all its handles,
 * without opening a handle on it (what the `shm-cache` CLI's `ls` and
 * `stats` show).
 *
 * @module
 */

import { type CacheStats, checkDir, checkName, statsFromVector } from "./cache.ts";
import { errorForStatus, Status } from "./errors.ts";
import { loadNative } from "./ffi/load.ts";
import { INSPECT, STATS } from "./ffi/symbols.ts";

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

/** Where each figure is in shmc_inspect's vector (lib/ffi/symbols.ts INSPECT). */
const AT = Object.fromEntries(INSPECT.map((name, i) => [name, i])) as Record<
  (typeof INSPECT)[number],
  number
>;
/** Liveness slots of a cache (zig/src/liveness.zig slots_max). */
const HANDLES_MAX = 4095;
const ERR_CAP = 512;
const PATH_CAP = 4096;
const LIST_CAP = 64 * 1024;

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
 * @throws {CacheError} `NotFound` when there is no such cache (or its file is still empty: being created); `Corrupt` (also for a FIFO or directory under its name), `Mismatch` (another format) or `UnsafeDirectory` as `open` would.
 * @example
 * ```ts
 * import { inspectCache, SharedCache } from "../mod.ts";
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
  const out = new Float64Array(INSPECT.length);
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
  const handles = out[AT.handles];
  return {
    name,
    fileBytes: out[AT.fileBytes],
    capacity: out[AT.capacity],
    maxKeyBytes: out[AT.keyBytesMax] - 1,
    maxValueBytes: out[AT.valueBytesMax] - 1,
    ttlMs: out[AT.ttlMs],
    size: out[AT.size],
    handles,
    handlePids: Array.from(pids.subarray(0, Math.min(handles, HANDLES_MAX))),
    lockOwnerPid: out[AT.lockOwnerPid],
    lockOwnerAlive: out[AT.lockOwnerAlive] === 1,
    writerActive: out[AT.writerActive] === 1,
    stats: statsFromVector(out.subarray(0, STATS.length)),
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
 * import { cacheDirectory } from "../mod.ts";
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
 * import { inspectCache, listCaches } from "../mod.ts";
 * for (const name of listCaches()) console.log(name, inspectCache(name).size);
 * ```
 */
export function listCaches(options: { dir?: string } = {}): string[] {
  const dir = checkDir(options.dir);
  const native = loadNative();
  const dirBytes = textEncoder.encode(dir);
  const err = new Uint8Array(ERR_CAP);
  const status = new Int32Array(2);
  // Read natively (no Deno read permission needed); a second call with the
  // size the first reported, should the list not fit. Bound: a third call
  // only if the directory grew in between, and then it is cut.
  let out = new Uint8Array(LIST_CAP);
  for (let attempt = 0; attempt < 3; attempt++) {
    const rc = native.shmc_list(dirBytes, dirBytes.length, out, out.length, err, ERR_CAP, status);
    if (rc < 0) {
      if (status[0] === Status.notFound) return [];
      throw errorForStatus(status[0], textDecoder.decode(err.subarray(0, status[1])));
    }
    if (rc <= out.length || attempt === 2) {
      const text = textDecoder.decode(out.subarray(0, Math.min(rc, out.length)));
      const names = text.split("\n").filter((name) => {
        try {
          return checkName(name) === name;
        } catch {
          return false; // a name the native side allows and this module does not ('..')
        }
      });
      return names.sort();
    }
    out = new Uint8Array(rc);
  }
  return [];
}
