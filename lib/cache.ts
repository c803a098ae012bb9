/**
 * `SharedCache`: a cache in shared memory, one region per cache name,
 * shared by every process (Deno or Bun) on the host that opens it.
 *
 * @module
 */

import { describe } from "./_describe.ts";
import { checkOptionNames } from "./_options.ts";
import { isPromiseRecord, type PromiseRecord, settle } from "./_pending.ts";
import {
  checkKeyType,
  Codec,
  CODEC_IDS,
  CODEC_NAMES,
  type CodecName,
  decodeKey,
  encodeKey,
  keySize,
  TAG_JSON,
  TAG_NUMBER,
  TAG_STRING,
  TAG_STRUCTURED,
  TAG_WTF8,
} from "./codec.ts";
import { freezeIfPlain, freezeJson } from "./_freeze.ts";
import { CacheError, errorForStatus, Status } from "./errors.ts";
import { CacheLock, type LockedOps } from "./guard.ts";
import { loadNative } from "./ffi/load.ts";
import {
  CLAIM_PREFIX,
  clearFlights,
  type FlightCounts,
  getOrSetOn,
  type GetOrSetOptions,
  newFlightCounts,
} from "./_single_flight.ts";
import { CONSTANTS, type Native, type NativeHandle, STATS } from "./ffi/symbols.ts";

/**
 * Options of {@linkcode SharedCache.open}. The geometry (`capacity`,
 * `maxKeyBytes`, `maxValueBytes`) and `ttlMs` are fixed when the cache is
 * created: a process that gives one of them must give the cache's value
 * (else `CacheError` `Mismatch`), and one that leaves them out attaches with
 * the cache's values. Creating a cache needs the three geometry fields.
 */
export interface SharedCacheOptions {
  /** Maximum number of entries (1 to 67,108,864). Needed to create the cache; omitted = the existing cache's. */
  capacity?: number;
  /** Maximum encoded key size in bytes (UTF-8 for strings; 1 to 65,535). Needed to create the cache; omitted = the existing cache's. */
  maxKeyBytes?: number;
  /** Maximum encoded value size in bytes (see `codec.ts`; 1 to 134,217,727). Needed to create the cache; omitted = the existing cache's. */
  maxValueBytes?: number;
  /** Default time to live of an entry in milliseconds. Omitted: the existing cache's, or no expiry for a new cache. */
  ttlMs?: number;
  /** The directory of the cache files (default `/dev/shm/shm-cache-<uid>` on Linux, else `$TMPDIR/shm-cache-<uid>`). Must be 0700 and owned by the user. */
  dir?: string;
  /** Longest wait for the writer lock or a writer in progress, in milliseconds (default 500). Past it a `get` misses, a `set` is dropped and `lock()` throws `LockTimeout`. */
  lockTimeoutMs?: number;
  /**
   * Bytes of decoded strings this handle keeps, so that a repeated hit on
   * an unchanged entry returns the string already decoded instead of
   * decoding it again (default 1 MiB = 1,048,576; 0 turns it off; at most
   * 64 MiB). Strings count by their UTF-8 size plus one; only strings of
   * at most 512 UTF-8 bytes are kept. The memo has one entry per 64 bytes of
   * budget (16,384 by default, each also costing about 32 bytes),
   * direct-mapped by the entry's slot. Every hit checks the entry's write
   * stamp (and checksum) in shared memory, which every write renews, so a
   * write by any process is seen at once: never a stale string. Local to
   * this handle; processes need not agree.
   */
  decodeCacheBytes?: number;
  /**
   * How values that are objects are stored. It is recorded in the cache:
   * a process that gives another codec gets `CacheError` `Mismatch`
   * naming `codec`; one that leaves it out uses the cache's. Default for a
   * new cache: `"json"`.
   * - `"json"`: plain objects and arrays of strings, finite numbers,
   *   booleans and null, exactly as they were, or a `TypeError` naming the
   *   path of what JSON would change (`value.m: Map is not storable; use
   *   codec: "structured"`). A property holding `undefined` is dropped and a
   *   `toJSON` method is honoured, as `JSON.stringify` does; `-0`, `NaN`,
   *   `Infinity`, `undefined` and holes in arrays, `Date`, `Map`, `Set`,
   *   `RegExp`, `bigint`, typed arrays, class instances, functions, symbols,
   *   promises and cycles inside a value are a `TypeError`.
   * - `"structured"`: also `Date`, `Map`, `Set`, `RegExp`, `bigint`, typed
   *   arrays, `ArrayBuffer`, `NaN`, `Infinity`, `-0`, `undefined` in arrays
   *   and objects, holes, null prototypes, shared references and cycles
   *   (devalue's format). Functions, symbols, promises and class instances
   *   are a `TypeError`; `toJSON` is not called. Plain JSON data is still
   *   stored as JSON, at the same speed.
   */
  codec?: CodecName;
  /**
   * Returns objects and arrays deeply frozen (`Object.freeze` all the way
   * down), so that the decode memo may hand the same object to every hit
   * on an unchanged entry, as it does strings: a repeated hit then skips
   * the copy and the parse (see `decodeCacheBytes`; objects of at most
   * 16 KiB encoded are kept). A value holding a `Map`, `Set`, `Date`,
   * `RegExp` or typed array (`codec: "structured"`) cannot be frozen for
   * good: it is returned unfrozen and decoded afresh on each hit.
   * `Uint8Array` values are always fresh copies. Local to this handle;
   * processes need not agree. Default false: every hit returns a new
   * object that the caller may change.
   */
  immutable?: boolean;
  /**
   * What to do when the cache exists with other geometry, TTL, codec or
   * file format than given: `"error"` (default) throws `CacheError` `Mismatch`;
   * `"replace"` builds a new, empty region with the given options under the
   * name (it needs `capacity`, `maxKeyBytes` and `maxValueBytes`). Handles
   * of the old region, in any process, move to the new one at their next
   * operation; the old entries are dropped, and a write racing with the
   * replace may be lost, but no process keeps using the old region. Two
   * processes that each open with their own geometry and `"replace"`
   * replace each other's region at every open: give every process the same
   * options, or let all but one attach.
   */
  onMismatch?: "error" | "replace";
}

/** Options of {@linkcode SharedCache.set}. */
export interface SetOptions {
  /** This entry's time to live in milliseconds; `Infinity` = never expires. Default: the cache's `ttlMs`. */
  ttlMs?: number;
}

/**
 * Counters of {@linkcode SharedCache.stats}. `hits`, `misses`, `memoHits`,
 * `readTimeouts`, `droppedWrites` and `lockTimeouts` are one handle's, or,
 * with `{ allHandles: true }` (and in `inspectCache`), the sum over every
 * handle that ever had the cache open, in any process, closed ones included.
 */
export interface CacheStats {
  /** Reads that found a live entry. */
  hits: number;
  /** Reads that found nothing (or an expired entry). */
  misses: number;
  /** Hits answered from the handle's decode memo (see `decodeCacheBytes`): no copy, no decode. */
  memoHits: number;
  /** Successful writes, by all processes. */
  sets: number;
  /** Entries removed by `delete`, by all processes. */
  deletes: number;
  /** Entries evicted by SIEVE to make room, by all processes. */
  evictions: number;
  /** Expired entries removed, by all processes. */
  expirations: number;
  /** Writer locks taken over from a dead owner, by all processes. */
  recoveries: number;
  /** Structure rebuilds after a crash mid-write or a corruption, by all processes. */
  rebuilds: number;
  /** Reads that gave up (as a miss) on a writer stuck beyond `lockTimeoutMs`. */
  readTimeouts: number;
  /** Writes dropped: the lock stayed held beyond `lockTimeoutMs`, or a new key found no room in its run of the hash table (practically never with honest keys; routinely with keys crafted to crowd it). */
  droppedWrites: number;
  /** Lock waits that ran out (dropped writes and refused `lock()` calls). */
  lockTimeouts: number;
  /** Results of `getOrSet` returned without being stored, by this handle: too large, or not storable by the codec. */
  unstoredResults: number;
  /** Entries stored now (expired entries count until removed). */
  size: number;
  /** The capacity the region was created with. */
  capacity: number;
  /** PID recorded by the current writer-lock owner, 0 when free (diagnostics only). */
  lockOwnerPid: number;
}

/** The result of {@linkcode SharedCache.verify}. */
export interface VerifyResult {
  /** True when no problem remains (after repair, if asked). */
  ok: boolean;
  /** The problems found (before any repair), one sentence each. */
  problems: string[];
  /** True when a repair ran. */
  repaired: boolean;
}

const DEFAULT_LOCK_TIMEOUT_MS = 500;
/** The names {@linkcode SharedCache.open} reads; any other is a typo. */
const OPEN_OPTIONS: readonly (keyof SharedCacheOptions)[] = [
  "capacity",
  "maxKeyBytes",
  "maxValueBytes",
  "ttlMs",
  "dir",
  "lockTimeoutMs",
  "decodeCacheBytes",
  "codec",
  "immutable",
  "onMismatch",
];
const SET_OPTIONS: readonly (keyof SetOptions)[] = ["ttlMs"];
/** `shmc_insert` modes (lib/ffi/symbols.ts CONSTANTS, checked at load). */
const INSERT_SET = CONSTANTS.insertSet;
const INSERT_ADD = CONSTANTS.insertAdd;
const INSERT_UPDATE = CONSTANTS.insertUpdate;
const TTL_MS_MAX = 1e15;
const CAPACITY_MAX = 1 << 26;
const KEY_BYTES_MAX = (1 << 16) - 1;
const VALUE_BYTES_MAX = (1 << 27) - 1;
/** shmc_open's config: -1 = not given (taken from the existing cache). */
const NOT_GIVEN = -1;
/**
 * The most moves one operation makes. Each needs the region it moved to
 * to be destroyed or replaced again before the operation ran there: only
 * a process destroying the cache in a loop does that.
 */
const MOVES_MAX = 4;
/** shmc_open's config[6]: on mismatch, fail (0) or replace the region (1). */
const ON_MISMATCH_FAIL = 0;
const ON_MISMATCH_REPLACE = 1;
const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const ERR_CAP = 512;
const DEFAULT_DECODE_CACHE_BYTES = 1 << 20;
const DECODE_CACHE_BYTES_MAX = 1 << 26;
/** Budget bytes per memo entry: 1 MiB gives 16,384 entries. */
const DECODE_CACHE_BYTES_PER_ENTRY = 64;
/** u32 per memo entry: slot, length, stamp low/high, checksum low/high (CONSTANTS). */
const MEMO_STRIDE = CONSTANTS.memoStride;
/** u32 that shmc_get reports a hit in (CONSTANTS). */
const META_LEN = CONSTANTS.metaLength;
/** The largest encoded string (tag byte included) the decode memo keeps. */
const MEMO_VALUE_BYTES_MAX = 513;
/** The largest encoded object (tag byte included) the memo keeps with `immutable: true`. */
const MEMO_OBJECT_BYTES_MAX = 16_385;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function checkInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const shown = typeof value === "number" ? String(value) : typeof value;
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${shown}`);
  }
  return value;
}

/** Validates a cache name (as the native side does, plus no `..`). */
export function checkName(name: unknown): string {
  if (typeof name !== "string") {
    throw new TypeError(`cache name must be a string, got ${typeof name}`);
  }
  if (!NAME_RE.test(name) || name.includes("..")) {
    throw new RangeError(
      `cache name must be 1-128 letters, digits, '-', '_' or '.', not starting with '.' and without '..', got ${
        JSON.stringify(name)
      }`,
    );
  }
  return name;
}

/** Validates `dir`; "" for the default directory. */
export function checkDir(dir: unknown): string {
  if (dir === undefined) return "";
  if (typeof dir !== "string" || dir.length === 0 || dir.includes("\0")) {
    throw new TypeError(`dir must be a non-empty path string, got ${JSON.stringify(dir)}`);
  }
  return dir;
}

/** -1 = the cache default, 0 = never, else milliseconds. */
function entryTtl(ttlMs: number | undefined): number {
  if (ttlMs === undefined) return -1;
  if (ttlMs === Infinity) return 0;
  if (typeof ttlMs !== "number" || !(ttlMs > 0) || !Number.isFinite(ttlMs)) {
    throw new RangeError(
      `ttlMs must be a positive number of milliseconds or Infinity, got ${String(ttlMs)}`,
    );
  }
  return ttlMs;
}

function describeKey(key: string | Uint8Array): string {
  if (typeof key === "string") {
    return key.length > 40 ? `${JSON.stringify(key.slice(0, 40))}...` : JSON.stringify(key);
  }
  return `Uint8Array(${key.byteLength})`;
}

/** Where each counter is in the stats vector (lib/ffi/symbols.ts STATS). */
const AT = Object.fromEntries(STATS.map((name, i) => [name, i])) as Record<
  (typeof STATS)[number],
  number
>;

/**
 * The stats vector of shmc_stats and shmc_inspect (zig/src/exports.zig
 * stats_fill, named by STATS) as {@linkcode CacheStats}.
 */
export function statsFromVector(s: Float64Array): CacheStats {
  return {
    hits: s[AT.hits],
    misses: s[AT.misses],
    memoHits: s[AT.memoHits],
    sets: s[AT.sets],
    deletes: s[AT.deletes],
    evictions: s[AT.evictions],
    expirations: s[AT.expirations],
    recoveries: s[AT.recoveries],
    rebuilds: s[AT.rebuilds],
    readTimeouts: s[AT.readTimeouts],
    droppedWrites: s[AT.droppedWrites],
    lockTimeouts: s[AT.lockTimeouts],
    unstoredResults: s[AT.unstoredResults],
    size: s[AT.size],
    capacity: s[AT.capacity],
    lockOwnerPid: s[AT.lockOwnerPid],
  };
}

/**
 * `counts` with its two skip counters forwarding every increment to `add`
 * as well: getOrSet (_single_flight.ts) counts in `counts`, and the
 * handle's counter line in the region must count too, so that the stats
 * of every handle can be summed.
 */
function forwardingSkips(counts: FlightCounts, add: (n: number) => void): FlightCounts {
  for (const field of ["oversizeSkips", "unstorableSkips"] as const) {
    let value = counts[field];
    Object.defineProperty(counts, field, {
      get: () => value,
      set: (next: number) => {
        if (next > value) add(next - value);
        value = next;
      },
    });
  }
  return counts;
}

/** What a native open returned: the handle and the region's own limits. */
interface Opened {
  handle: NativeHandle;
  /** The file's device and inode: the cache's identity in this isolate. */
  identity: string;
  maxKeyBytes: number;
  maxValueBytes: number;
  codec: CodecName;
}

/**
 * Opens `name` natively. `config` is shmc_open's vector (geometry with the
 * tag byte included, -1 = not given), copied, so the caller's stays as it
 * was given.
 */
function openNative(native: Native, dir: string, name: string, config: Float64Array): Opened {
  const dirBytes = textEncoder.encode(dir);
  const nameBytes = textEncoder.encode(name);
  const inout = new Float64Array(config);
  const err = new Uint8Array(ERR_CAP);
  const status = new Int32Array(2);
  const handle = native.shmc_open(
    dirBytes,
    dirBytes.length,
    nameBytes,
    nameBytes.length,
    inout,
    err,
    ERR_CAP,
    status,
  );
  if (handle === null || handle === 0) {
    throw errorForStatus(status[0], textDecoder.decode(err.subarray(0, status[1])));
  }
  // The file's device and inode identify the cache in this isolate
  // whatever spelling of the directory was used.
  const id = new Float64Array(2);
  if (native.shmc_file_id(handle, id) !== 0) {
    native.shmc_close(handle);
    throw new CacheError("Io", `cache ${JSON.stringify(name)}: cannot stat its file`);
  }
  // On success the native side wrote the cache's own geometry back; its
  // limits include the tag byte that codec.ts prepends.
  return {
    handle,
    identity: `${id[0]}:${id[1]}`,
    maxKeyBytes: inout[1] - 1,
    maxValueBytes: inout[2] - 1,
    codec: CODEC_NAMES[inout[5]],
  };
}

/**
 * A `Retired` status met while this handle could not move (inside a lock
 * section): the public operation that started it catches it and moves
 * once the lock is given back.
 */
class MovableRetired extends CacheError {}

/** Which handles of this isolate hold a lock, by cache identity. */
const lockStates = new Map<string, { held: boolean }>();

function lockStateOf(identity: string): { held: boolean } {
  let state = lockStates.get(identity);
  if (state === undefined) lockStates.set(identity, state = { held: false });
  return state;
}

interface Finalized {
  native: Native;
  handle: NativeHandle;
  lockState: { held: boolean };
  /** True while this handle holds the lock. */
  holding: boolean;
}

// Backstop only: a handle that was never closed is closed when collected
// (which releases a lock it held), and this isolate stops counting it.
const finalizer = new FinalizationRegistry<Finalized>((held) => {
  if (held.holding) held.lockState.held = false;
  held.native.shmc_close(held.handle);
});

/**
 * A cache in shared memory. Every process that opens the same name (and
 * directory) shares the entries. Reads take no lock; writes take a
 * cross-process writer lock that is recovered if its owner dies.
 *
 * @example
 * ```ts
 * import { SharedCache } from "../mod.ts";
 * using cache = SharedCache.open("sessions", { capacity: 10_000, maxKeyBytes: 256, maxValueBytes: 4096, ttlMs: 60_000 });
 * cache.set("user:1", { name: "Ada" }, { ttlMs: 5_000 });
 * cache.get("user:1"); // { name: "Ada" }
 * ```
 */
export class SharedCache implements Disposable {
  readonly #native: Native;
  #handle: NativeHandle | null;
  readonly #name: string;
  readonly #dir: string;
  /** shmc_open's vector as the caller gave it (to recreate the cache after a destroy). */
  readonly #config: Float64Array;
  /** Moves made by the operation running now (at most MOVES_MAX). */
  #moves = 0;
  #key: Uint8Array;
  #val: Uint8Array;
  /** Written by shmc_get on a hit: slot, memo matched, stamp low/high, checksum low/high, 0, 0. */
  readonly #meta: Uint32Array;
  #codec: Codec;
  #codecName: CodecName;
  // The decode memo, direct-mapped by slot: entry i holds, in #memoTags
  // (MEMO_STRIDE u32 per entry, read by the native side), the slot, the
  // encoded length, and the write's stamp and the slot's checksum (low,
  // high) when #memoVal[i] was decoded from it. Every write takes a new
  // stamp (zig/src/write.zig write_slot; the checksum, over key, value and
  // stamp, guards a corrupt file whose stamps repeat), and shmc_get
  // compares them under the same seqlock validation as the value it would
  // copy, so meta[1] = 1 means the value bytes are the ones #memoVal[i]
  // was decoded from. The lengths are summed in #memoBytes and kept
  // within #memoBudget. Mask -1 = disabled.
  readonly #memoMask: number;
  readonly #memoTags: Uint32Array;
  readonly #memoSize: number;
  #memoVal: unknown[];
  readonly #immutable: boolean;
  #memoBytes = 0;
  #memoSweep = 0;
  readonly #memoBudget: number;
  #maxKeyBytes: number;
  #maxValueBytes: number;
  #lockState: { held: boolean };
  readonly #stats = new Float64Array(STATS.length);
  /** The counters of getOrSet (see _single_flight.ts); unstored results also count in the region. */
  readonly #flightCounts = forwardingSkips(newFlightCounts(), (n) => {
    if (this.#handle !== null) this.#native.shmc_add_unstored(this.#handle, n);
  });
  /** Values set with promises in them, until they settle (see _pending.ts), by key. */
  readonly #pending = new Map<string, { value: unknown }>();
  #guard: CacheLock | undefined;
  readonly #unregister = {};
  readonly #finalized: Finalized;

  private constructor(
    native: Native,
    opened: Opened,
    name: string,
    where: {
      dir: string;
      config: Float64Array;
      decodeCacheBytes: number;
      immutable: boolean;
    },
  ) {
    const { handle, identity } = opened;
    this.#native = native;
    this.#handle = handle;
    this.#name = name;
    this.#dir = where.dir;
    this.#config = where.config;
    this.#maxKeyBytes = opened.maxKeyBytes;
    this.#maxValueBytes = opened.maxValueBytes;
    // Each buffer over an ArrayBuffer of its own, at a fixed address: the
    // native handle keeps their addresses (shmc_bind) for the hot calls.
    // They live as long as this object (or until a move replaces them and
    // binds the new ones), which is the only caller of those calls on this
    // handle; the finalizer's shmc_close does not touch them.
    this.#key = new Uint8Array(new ArrayBuffer(opened.maxKeyBytes + 1));
    this.#codec = new Codec(opened.maxValueBytes, opened.codec);
    this.#codecName = opened.codec;
    this.#val = this.#codec.buf;
    this.#meta = new Uint32Array(new ArrayBuffer(META_LEN * 4));
    // Validated and defaulted by open().
    const budget = where.decodeCacheBytes;
    const size = budget === 0
      ? 0
      : 2 ** Math.ceil(Math.log2(Math.max(1, budget / DECODE_CACHE_BYTES_PER_ENTRY)));
    this.#memoMask = size - 1;
    this.#memoSize = size;
    this.#memoBudget = budget;
    this.#memoTags = new Uint32Array(new ArrayBuffer(Math.max(size, 1) * MEMO_STRIDE * 4));
    // Slot 0xffffffff is never a slot (capacity <= 2^26): an empty entry,
    // holding 0 bytes.
    for (let i = 0; i < size; i++) this.#memoTags[i * MEMO_STRIDE] = 0xffff_ffff;
    this.#memoVal = new Array(size);
    this.#immutable = where.immutable;
    this.#bind(handle);
    this.#lockState = lockStateOf(identity);
    this.#finalized = { native, handle, lockState: this.#lockState, holding: false };
    finalizer.register(this, this.#finalized, this.#unregister);
  }

  /**
   * Opens the cache `name`: attaches to it when it exists, else creates it
   * (which needs `capacity`, `maxKeyBytes` and `maxValueBytes`). A
   * geometry field, `ttlMs` or `codec` that is given must equal the
   * existing cache's, else `CacheError` `Mismatch` names the field; one
   * left out is taken from the cache (`codec` defaults to `"json"` for a
   * new cache). Opening a cache that does not exist without the
   * geometry throws `CacheError` `NotFound`.
   *
   * @param name 1-128 letters, digits, `-`, `_` or `.` (the file is `<dir>/<name>.shmc`).
   * @param options Geometry, TTL, directory and per-handle settings; all optional to attach.
   * @returns An open handle; close it (or let `using` do it).
   * @example
   * ```ts
   * import { SharedCache } from "../mod.ts";
   * SharedCache.open("sessions", { capacity: 10_000, maxKeyBytes: 256, maxValueBytes: 4096 }).close();
   * using attached = SharedCache.open("sessions"); // the geometry comes from the cache
   * attached.stats().capacity; // 10000
   * ```
   */
  static open(name: string, options: SharedCacheOptions = {}): SharedCache {
    checkName(name);
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `options must be an object, got ${options === null ? "null" : typeof options}`,
      );
    }
    checkOptionNames(options, OPEN_OPTIONS, "SharedCache.open options");
    const optional = (field: string, value: unknown, min: number, max: number): number =>
      value === undefined ? NOT_GIVEN : checkInt(field, value, min, max);
    const capacity = optional("capacity", options.capacity, 1, CAPACITY_MAX);
    const maxKeyBytes = optional("maxKeyBytes", options.maxKeyBytes, 1, KEY_BYTES_MAX);
    const maxValueBytes = optional("maxValueBytes", options.maxValueBytes, 1, VALUE_BYTES_MAX);
    const ttlMs = optional("ttlMs", options.ttlMs, 1, TTL_MS_MAX);
    const lockTimeoutMs = options.lockTimeoutMs === undefined
      ? DEFAULT_LOCK_TIMEOUT_MS
      : checkInt("lockTimeoutMs", options.lockTimeoutMs, 1, 3_600_000);
    const decodeCacheBytes = options.decodeCacheBytes === undefined
      ? DEFAULT_DECODE_CACHE_BYTES
      : checkInt("decodeCacheBytes", options.decodeCacheBytes, 0, DECODE_CACHE_BYTES_MAX);
    const dir = checkDir(options.dir);
    const codec = options.codec;
    if (codec !== undefined && codec !== "json" && codec !== "structured") {
      throw new TypeError(`codec must be "json" or "structured", got ${describe(codec)}`);
    }
    if (options.immutable !== undefined && typeof options.immutable !== "boolean") {
      throw new TypeError(`immutable must be a boolean, got ${describe(options.immutable)}`);
    }
    const onMismatch = options.onMismatch;
    if (onMismatch !== undefined && onMismatch !== "error" && onMismatch !== "replace") {
      throw new TypeError(
        `onMismatch must be "error" or "replace", got ${describe(onMismatch)}`,
      );
    }
    const native = loadNative();
    // The native limits include the tag byte that codec.ts prepends.
    const config = new Float64Array([
      capacity,
      maxKeyBytes === NOT_GIVEN ? NOT_GIVEN : maxKeyBytes + 1,
      maxValueBytes === NOT_GIVEN ? NOT_GIVEN : maxValueBytes + 1,
      ttlMs,
      lockTimeoutMs,
      codec === undefined ? NOT_GIVEN : CODEC_IDS[codec],
      onMismatch === "replace" ? ON_MISMATCH_REPLACE : ON_MISMATCH_FAIL,
    ]);
    const opened = openNative(native, dir, name, config);
    try {
      // A move never replaces (two processes would replace each other's
      // region forever): the kept vector says "fail" on a mismatch.
      config[6] = ON_MISMATCH_FAIL;
      return new SharedCache(native, opened, name, {
        dir,
        config,
        decodeCacheBytes,
        immutable: options.immutable === true,
      });
    } catch (e) {
      native.shmc_close(opened.handle);
      throw e;
    }
  }

  /**
   * Removes the cache's file. Every handle that has it open, in any
   * process, stops using the old region at its next operation: it reopens
   * the name and runs the operation there (see "Lifecycle" in the README),
   * creating a new, empty region with its own options if it was opened
   * with `capacity`, `maxKeyBytes` and `maxValueBytes`, or attaching to
   * whatever region another process created meanwhile; a handle opened
   * without them (attach) throws `CacheError` `NotFound` until the cache is
   * created again. The next `open` creates a new, empty region.
   *
   * @example
   * ```ts
   * import { SharedCache } from "../mod.ts";
   * using cache = SharedCache.open("short-lived", { capacity: 10, maxKeyBytes: 16, maxValueBytes: 16 });
   * cache.set("a", 1);
   * SharedCache.destroy("short-lived");
   * cache.get("a"); // undefined: the handle moved to a new, empty region
   * ```
   */
  static destroy(name: string, options: { dir?: string } = {}): void {
    checkName(name);
    checkOptionNames(options, ["dir"], "SharedCache.destroy options");
    const dir = checkDir(options.dir);
    const native = loadNative();
    const dirBytes = textEncoder.encode(dir);
    const nameBytes = textEncoder.encode(name);
    const err = new Uint8Array(ERR_CAP);
    const status = new Int32Array(2);
    const rc = native.shmc_destroy(
      dirBytes,
      dirBytes.length,
      nameBytes,
      nameBytes.length,
      err,
      ERR_CAP,
      status,
    );
    if (rc !== 0) throw errorForStatus(status[0], textDecoder.decode(err.subarray(0, status[1])));
  }

  /** The cache's name. */
  get name(): string {
    return this.#name;
  }

  #open(): NativeHandle {
    const handle = this.#handle;
    if (handle === null) {
      throw new CacheError("Closed", `cache ${JSON.stringify(this.#name)} is closed`);
    }
    return handle;
  }

  /** Gives `handle` this object's buffers for the hot calls (shmc_bind). */
  #bind(handle: NativeHandle): void {
    const rc = this.#native.shmc_bind(
      handle,
      this.#key,
      this.#key.length,
      this.#val,
      this.#val.length,
      this.#meta,
      META_LEN,
      this.#memoTags,
      this.#memoSize,
    );
    if (rc !== 0) {
      throw errorForStatus(-rc, `cache ${JSON.stringify(this.#name)}: binding buffers failed`);
    }
  }

  /**
   * The native side answered `Retired` (the region was destroyed or
   * replaced, or its file removed): move to the cache's current region and
   * run the operation `again` there. If the cache was destroyed or
   * replaced again each time, up to MOVES_MAX moves, the operation gives
   * up as a lost race: a read misses and a write is dropped (`dropped`,
   * as after a lock timeout; the cache is being emptied anyway), and
   * anything else throws `CacheError` `Retired`. So does a `Retired` met
   * while this handle holds `lock()`.
   */
  #again<T>(what: string, again: () => T, dropped?: () => T): T {
    if (this.#moves >= MOVES_MAX) {
      if (dropped !== undefined) return dropped();
      throw new CacheError(
        "Retired",
        `cache ${
          JSON.stringify(this.#name)
        }: ${what}: the cache was destroyed or replaced ${MOVES_MAX} times during the operation`,
      );
    }
    this.#move(what);
    this.#moves++;
    try {
      return again();
    } finally {
      this.#moves--;
    }
  }

  /**
   * Runs `run`, an operation that takes the lock itself and so reports a
   * retired region as `MovableRetired` once the lock is given back; moves
   * and runs it again, as often as #again allows. Every retry goes through
   * here too, so a second `Retired` moves again instead of escaping as the
   * internal class.
   */
  #movable<T>(what: string, run: () => T): T {
    try {
      return run();
    } catch (e) {
      if (!(e instanceof MovableRetired)) throw e;
      return this.#again(what, () => this.#movable(what, run));
    }
  }

  /**
   * Reopens the name: attaches to the region there now (taking its limits,
   * whatever they are), or, if there is none and this handle was opened
   * with the geometry, creates one with it. Never replaces. Then binds
   * buffers of the new limits, forgets the decode memo, and closes the old
   * handle. On failure the old handle stays (still retired), and the error
   * is thrown: `NotFound` for a handle opened without the geometry.
   */
  #move(what: string): void {
    const old = this.#open();
    if (this.#finalized.holding) {
      throw new CacheError(
        "Retired",
        `cache ${
          JSON.stringify(this.#name)
        }: ${what}: the cache was destroyed or replaced while this handle held lock(); release the lock guard, then the handle moves to the new region`,
      );
    }
    const opened = this.#reopen();
    try {
      if (opened.maxKeyBytes !== this.#maxKeyBytes) {
        this.#key = new Uint8Array(new ArrayBuffer(opened.maxKeyBytes + 1));
        this.#maxKeyBytes = opened.maxKeyBytes;
      }
      if (opened.maxValueBytes !== this.#maxValueBytes || opened.codec !== this.#codecName) {
        this.#codec = new Codec(opened.maxValueBytes, opened.codec);
        this.#codecName = opened.codec;
        this.#val = this.#codec.buf;
        this.#maxValueBytes = opened.maxValueBytes;
      }
      this.#bind(opened.handle);
    } catch (e) {
      this.#native.shmc_close(opened.handle);
      throw e;
    }
    // The memo names entries of the old region by slot: forget it all.
    for (let i = 0; i < this.#memoSize; i++) {
      this.#memoTags[i * MEMO_STRIDE] = 0xffff_ffff;
      this.#memoTags[i * MEMO_STRIDE + 1] = 0;
    }
    this.#memoVal = new Array(this.#memoSize);
    this.#memoBytes = 0;
    // A promise record waiting to be stored belongs to the old region: its
    // result must not land in the new one (a write racing a destroy or a
    // replace is lost, never seen there). Counted as a result not stored.
    this.#flightCounts.unstorableSkips += this.#pending.size;
    this.#pending.clear();
    this.#handle = opened.handle;
    this.#lockState = lockStateOf(opened.identity);
    this.#finalized.handle = opened.handle;
    this.#finalized.lockState = this.#lockState;
    this.#native.shmc_close(old);
  }

  /** The native open of a move (see #move). */
  #reopen(): Opened {
    const attach = new Float64Array(this.#config);
    // Every field a region records (geometry, TTL, codec) is the region's.
    attach.fill(NOT_GIVEN, 0, 4);
    attach[5] = NOT_GIVEN;
    const creates = this.#config[0] !== NOT_GIVEN && this.#config[1] !== NOT_GIVEN &&
      this.#config[2] !== NOT_GIVEN;
    // Bound: three rounds of attach, then create. A creator racing with
    // ours makes our create a Mismatch, and its region is then there to
    // attach to, unless it is destroyed again meanwhile.
    let last: unknown;
    for (let round = 0; round < 3; round++) {
      try {
        return openNative(this.#native, this.#dir, this.#name, attach);
      } catch (e) {
        if (!(e instanceof CacheError) || e.code !== "NotFound") throw e;
        if (!creates) {
          throw new CacheError(
            "NotFound",
            `cache ${
              JSON.stringify(this.#name)
            } was destroyed, and this handle was opened without capacity, maxKeyBytes and maxValueBytes to create it again`,
          );
        }
      }
      try {
        return openNative(this.#native, this.#dir, this.#name, this.#config);
      } catch (e) {
        if (!(e instanceof CacheError) || e.code !== "Mismatch") throw e;
        last = e;
      }
    }
    throw last;
  }

  #encodeKey(key: string | Uint8Array): number {
    const n = encodeKey(key, this.#key, this.#maxKeyBytes);
    if (n < 0) {
      const size = keySize(key);
      throw new RangeError(
        `key ${describeKey(key)} is ${size} bytes, more than maxKeyBytes ${this.#maxKeyBytes}`,
      );
    }
    return n;
  }

  #fail(rc: number, what: string): never {
    if (rc === -Status.retired) {
      throw new MovableRetired(
        "Retired",
        `cache ${
          JSON.stringify(this.#name)
        }: ${what}: the cache was destroyed or replaced while this process held its lock`,
      );
    }
    throw errorForStatus(
      -rc,
      `cache ${JSON.stringify(this.#name)}: ${what} failed with status ${-rc}`,
    );
  }

  /** The value stored under `key`, or `undefined` on a miss (use {@linkcode has} to tell a stored `undefined` apart). */
  get(key: string | Uint8Array): unknown {
    if (this.#pending.size !== 0 && typeof key === "string" && this.#pending.has(key)) {
      return this.#pending.get(key)!.value;
    }
    const handle = this.#open();
    const n = this.#encodeKey(key);
    const rc = this.#native.shmc_get(handle, n, 1);
    if (rc >= 0) {
      const meta = this.#meta;
      // The native side found this handle's memo entry for this exact
      // write (slot, length, stamp and checksum) and copied nothing.
      if (meta[1] !== 0) {
        return this.#memoVal[meta[0] & this.#memoMask];
      }
      return this.#decodeRead(rc);
    }
    if (rc === -Status.miss || rc === -Status.lockTimeout) return undefined;
    if (rc === -Status.retired) return this.#again("get", () => this.get(key), () => undefined);
    return this.#fail(rc, "get");
  }

  /**
   * Decodes the value just copied (`length` bytes); a short string, and
   * with `immutable` an object (frozen), also enters the memo.
   */
  #decodeRead(length: number): unknown {
    const tag = this.#val[0];
    if (tag === TAG_STRING || tag === TAG_WTF8) {
      if (length > MEMO_VALUE_BYTES_MAX) return this.#codec.decode(length);
      return this.#remember(this.#codec.decode(length), length);
    }
    if (!this.#immutable) return this.#codec.decode(length);
    if (tag === TAG_JSON) {
      const value = freezeJson(this.#codec.decode(length));
      return length > MEMO_OBJECT_BYTES_MAX ? value : this.#remember(value, length);
    }
    if (tag === TAG_STRUCTURED) {
      const value = this.#codec.decode(length);
      if (!freezeIfPlain(value) || length > MEMO_OBJECT_BYTES_MAX) return value;
      return this.#remember(value, length);
    }
    return this.#codec.decode(length);
  }

  /** Keeps `value`, decoded from the `length` bytes just read, in the memo; returns it. */
  #remember(value: unknown, length: number): unknown {
    // A value larger than the whole budget is not kept (the sweep below
    // could never make room for it).
    if (this.#memoMask < 0 || length > this.#memoBudget) return value;
    const meta = this.#meta;
    const slot = meta[0];
    const i = slot & this.#memoMask;
    const tags = this.#memoTags;
    const t = i * MEMO_STRIDE;
    // The new value always takes entry i (the latest read is the likelier
    // to be read again); entries swept round-robin make room past the
    // budget. Termination: entry i alone holds length <= budget, so while
    // the total is over budget another entry holds bytes, and one pass of
    // the sweep reaches it. Each entry is cleared at most once per
    // admission, so the sweep costs O(1) amortised.
    this.#memoBytes += length - tags[t + 1];
    tags[t] = slot;
    tags[t + 1] = length;
    tags[t + 2] = meta[2];
    tags[t + 3] = meta[3];
    tags[t + 4] = meta[4];
    tags[t + 5] = meta[5];
    this.#memoVal[i] = value;
    while (this.#memoBytes > this.#memoBudget) {
      const j = this.#memoSweep;
      this.#memoSweep = (j + 1) & this.#memoMask;
      if (j === i) continue;
      this.#memoBytes -= tags[j * MEMO_STRIDE + 1];
      tags[j * MEMO_STRIDE] = 0xffff_ffff;
      tags[j * MEMO_STRIDE + 1] = 0;
      this.#memoVal[j] = undefined;
    }
    return value;
  }

  /** Whether a live entry is stored under `key`. */
  has(key: string | Uint8Array): boolean {
    if (this.#pending.size !== 0 && typeof key === "string" && this.#pending.has(key)) return true;
    const handle = this.#open();
    const n = this.#encodeKey(key);
    const rc = this.#native.shmc_get(handle, n, 0);
    if (rc >= 0) return true;
    if (rc === -Status.miss || rc === -Status.lockTimeout) return false;
    if (rc === -Status.retired) return this.#again("has", () => this.has(key), () => false);
    return this.#fail(rc, "has");
  }

  #checkUnlocked(op: string): void {
    if (this.#lockState.held) {
      throw new CacheError(
        "LockHeld",
        `cache ${
          JSON.stringify(this.#name)
        }: ${op} while this process holds cache.lock(); use the lock guard (tx.${op}) or release it first`,
      );
    }
  }

  /**
   * Stores `value` under `key`. Throws `RangeError` when the key or the
   * encoded value exceeds the limits (nothing stored is lost). If the writer
   * lock stays with a live owner beyond `lockTimeoutMs`, or a new key finds
   * no room in its crowded run of the hash table (practically never with
   * honest keys; see the README's caveats), the write is dropped and counted in
   * `stats().droppedWrites`.
   *
   * `{ kind: "promise", value: promise }` (what `@std/cache`'s `memoize`
   * stores for an async result) under a string key: this handle reads it
   * back as given until the promise resolves, then it is stored with the
   * result in the promise's place (unless another write of the key came
   * first); a rejection stores nothing. Other processes see nothing until
   * then. A promise anywhere else in a value is a `TypeError`, as the
   * codec says.
   */
  set(key: string | Uint8Array, value: unknown, options?: SetOptions): void {
    this.#checkUnlocked("set");
    checkOptionNames(options, SET_OPTIONS, "SharedCache.set options (the third argument)");
    // A newer set replaces a value still waiting for its promises.
    if (this.#pending.size !== 0 && typeof key === "string") this.#pending.delete(key);
    // @std/cache's record of a promise waits for its result
    // (lib/_pending.ts); the codec refuses promises anywhere else.
    if (typeof key === "string" && isPromiseRecord(value)) {
      this.#setWhenSettled(key, value, options?.ttlMs);
      return;
    }
    this.#insert(key, value, options?.ttlMs, INSERT_SET, false);
  }

  /**
   * Keeps the record `value` as this handle's value of `key` until its
   * promise settles; then stores it with the result in the promise's place, unless
   * another write of `key` came first. A rejection stores nothing; so does
   * a result the cache refuses (counted in `unstoredResults`).
   */
  #setWhenSettled(key: string, value: PromiseRecord, ttlMs: number | undefined): void {
    entryTtl(ttlMs);
    this.#open();
    const waiting = { value };
    this.#pending.set(key, waiting);
    const current = () => this.#pending.get(key) === waiting && this.#handle !== null;
    settle(value).then((settled) => {
      if (!current()) return;
      this.#pending.delete(key);
      try {
        this.set(key, settled, ttlMs === undefined ? undefined : { ttlMs });
      } catch {
        this.#flightCounts.unstorableSkips++;
      }
    }, () => {
      if (current()) this.#pending.delete(key);
    });
  }

  /** A set through the lock guard: this handle holds the lock. */
  #set(key: string | Uint8Array, value: unknown, ttlMs: number | undefined): void {
    this.#insert(key, value, ttlMs, INSERT_SET, true);
  }

  /**
   * Stores `value` under `key` only if no live entry is there, atomically
   * across processes. True if it stored. A write dropped (lock timeout, or
   * no room in a crowded run of the table, as for `set`) returns false and
   * counts in `droppedWrites`.
   */
  add(key: string | Uint8Array, value: unknown, options?: SetOptions): boolean {
    this.#checkUnlocked("add");
    checkOptionNames(options, SET_OPTIONS, "SharedCache.add options (the third argument)");
    return this.#insert(key, value, options?.ttlMs, INSERT_ADD, false);
  }

  /** One native insert; false when an add found a live entry or the write was dropped. */
  #insert(
    key: string | Uint8Array,
    value: unknown,
    ttlMs: number | undefined,
    mode: number,
    guarded: boolean,
  ): boolean {
    checkKeyType(key);
    const ttl = entryTtl(ttlMs);
    // The value first: encoding it may run the caller's toJSON, which may
    // use this cache (overwriting its buffers), lock it, or close it. So
    // nothing is written to the buffers before, and the state is checked
    // after.
    const len = this.#codec.encode(value);
    if (!guarded) this.#checkUnlocked(mode === INSERT_ADD ? "add" : "set");
    const handle = this.#open();
    const n = this.#encodeKey(key);
    if (len < 0) {
      throw new RangeError(
        `value for key ${describeKey(key)} is ${
          this.#codec.size(value)
        } bytes encoded, more than maxValueBytes ${this.#maxValueBytes}`,
      );
    }
    const rc = this.#native.shmc_put(handle, n, len, ttl, mode);
    if (rc === 0) return true;
    if (rc === -Status.miss && mode === INSERT_ADD) return false;
    // Dropped (and counted natively in droppedWrites): the lock stayed
    // held, or the key's probe run in the table had no room (keys that hash
    // alike; zig/src/table.zig).
    if (rc === -Status.lockTimeout || rc === -Status.full) return false;
    // Under a lock (a guard's set, or increment) the handle cannot move:
    // #fail throws, and increment moves once its lock is given back.
    if (rc === -Status.retired && !guarded) {
      return this.#again(
        mode === INSERT_ADD ? "add" : "set",
        () => this.#insert(key, value, ttlMs, mode, false),
        () => false,
      );
    }
    return this.#fail(rc, mode === INSERT_ADD ? "add" : "set");
  }

  /**
   * The value under `key`; on a miss, `fn()`'s result, stored under `key`
   * first. Concurrent misses of one key share one call of `fn`: in this
   * process they join it, and other processes wait for it (a claim in the
   * cache; see `_single_flight.ts`), each wait bounded by `waitTimeoutMs`,
   * after which the waiter computes by itself. A claimant that dies is
   * taken over within a poll interval.
   *
   * - `fn` may be synchronous (the result is returned as it is; a waiting
   *   process blocks its thread) or asynchronous (a promise is returned;
   *   declare `fn` `async` so that a hit is a promise too, else a hit
   *   returns the bare value).
   * - A failure of `fn` is not stored: every caller that joined gets it,
   *   and the next call computes again.
   * - A result the cache cannot store (too large: `RangeError`; not
   *   storable by the codec: `TypeError`) is returned to every caller in
   *   this process, not stored, and counted in `stats().unstoredResults`;
   *   waiting processes compute it themselves. So is a key over
   *   `maxKeyBytes`.
   * - If `fn`, directly or through other `getOrSet` calls or memoized
   *   functions, asks for the key it is computing, that call fails with
   *   `RecursiveCallError` instead of waiting for itself.
   *
   * @param key A string key, not starting with "\u0000sf:" (claims).
   * @param fn Computes the value on a miss; called with no arguments.
   * @param options `ttlMs` of the stored result, `waitTimeoutMs` of waits.
   * @returns The stored or computed value (a promise of it for an `async` fn).
   * @throws {TypeError} If `key` is not a string or `fn` not a function, or an option is unknown.
   * @throws {RangeError} If `ttlMs` or `waitTimeoutMs` is out of range.
   *
   * @example
   * ```ts
   * import { SharedCache } from "../mod.ts";
   *
   * using cache = SharedCache.open("profiles", { capacity: 100, maxKeyBytes: 64, maxValueBytes: 1024 });
   * const profile = await cache.getOrSet("user:1", async () => ({ id: 1, name: "Ada" }), {
   *   ttlMs: 60_000,
   * });
   * profile.name; // "Ada", computed once for every process on the host
   * const n = cache.getOrSet("answer", () => 42); // synchronous: 42
   * ```
   */
  getOrSet<T>(key: string, fn: () => Promise<T>, options?: GetOrSetOptions): Promise<T>;
  /** `getOrSet` with a synchronous `fn`: returns the value itself (see above). */
  getOrSet<T>(key: string, fn: () => T, options?: GetOrSetOptions): T;
  getOrSet<T>(key: string, fn: () => T | Promise<T>, options?: GetOrSetOptions): T | Promise<T> {
    return getOrSetOn(this, key, fn, options, this.#flightCounts) as T | Promise<T>;
  }

  /**
   * Adds `by` to the number stored under `key` and returns the new value,
   * atomically across processes (under the writer lock): concurrent
   * increments by any process are never lost. An absent key counts as 0.
   * The entry keeps its expiry: `ttlMs` (or the cache's `ttlMs`) applies
   * only to an entry this call creates, so a counter's window does not
   * slide with every increment (as Redis `INCR` does).
   *
   * @param key The counter's key.
   * @param by The amount to add, a finite number (negative to subtract). Default: 1.
   * @param options `ttlMs`: the time to live of a counter this call creates.
   * @returns The new value.
   * @throws {TypeError} If the value stored under `key` is not a number (nothing is changed), or `by` is not a number.
   * @throws {RangeError} If `by` or the result is not finite, or the key is over `maxKeyBytes`.
   * @throws {CacheError} `LockTimeout` if the writer lock stays held beyond `lockTimeoutMs`; `Full` if
   *   a new key finds no room in its run of the hash table (see `set`); `LockHeld` while this process
   *   holds `lock()`.
   *
   * @example
   * ```ts
   * import { SharedCache } from "../mod.ts";
   *
   * using cache = SharedCache.open("rate", { capacity: 1000, maxKeyBytes: 64, maxValueBytes: 64 });
   * cache.increment("hits:/home"); // 1
   * cache.increment("hits:/home", 5); // 6
   * cache.increment("window:ada", 1, { ttlMs: 60_000 }); // 1, expires in a minute
   * ```
   */
  increment(key: string | Uint8Array, by: number = 1, options?: SetOptions): number {
    return this.#movable("increment", () => this.#increment(key, by, options));
  }

  #increment(key: string | Uint8Array, by: number, options?: SetOptions): number {
    checkKeyType(key);
    checkIncrement(by);
    checkOptionNames(options, SET_OPTIONS, "SharedCache.increment options (the third argument)");
    const ttlMs = options?.ttlMs;
    entryTtl(ttlMs);
    this.#checkUnlocked("increment");
    const handle = this.#open();
    this.#encodeKey(key);
    const rc = this.#native.shmc_lock(handle);
    if (rc === -Status.retired) this.#fail(rc, "increment");
    if (rc === -Status.lockTimeout) throw this.#lockTimeout("increment");
    if (rc !== 0) this.#fail(rc, "increment");
    try {
      // Under the lock nobody else writes: the read and the write are one
      // step for every other process. Reading the number's bytes directly
      // spares a decode of a value that is not a number.
      const n = this.#encodeKey(key);
      const length = this.#native.shmc_get(handle, n, 1);
      let current = 0;
      if (length >= 0) {
        if (this.#meta[1] !== 0 || this.#val[0] !== TAG_NUMBER || length !== 9) {
          const value = this.#meta[1] !== 0
            ? this.#memoVal[this.#meta[0] & this.#memoMask]
            : this.#codec.decode(length);
          throw new TypeError(
            `increment: the value under key ${describeKey(key)} is ${
              describe(value)
            }, not a number; nothing was changed`,
          );
        }
        current = this.#codec.decode(length) as number;
      } else if (length !== -Status.miss) {
        this.#fail(length, "increment");
      }
      const next = current + by;
      if (!Number.isFinite(next)) {
        throw new RangeError(
          `increment: ${current} + ${by} under key ${
            describeKey(key)
          } is not finite; nothing was changed`,
        );
      }
      // After a hit, update keeps the expiry the read saw, even if it
      // passed since (the count then expires as it would have); after a
      // miss, set starts a window of ttlMs (zig/src/write.zig Mode).
      const mode = length >= 0 ? INSERT_UPDATE : INSERT_SET;
      if (!this.#insert(key, next, ttlMs, mode, true)) {
        throw new CacheError(
          "Full",
          `cache ${JSON.stringify(this.#name)}: increment of key ${
            describeKey(key)
          } found no room in its run of the hash table`,
        );
      }
      return next;
    } finally {
      this.#native.shmc_unlock(handle);
    }
  }

  /**
   * The values under `keys`, in order (`undefined` for a miss): the same
   * as a `get` per key, each a lock-free read of its own (the values are not
   * one snapshot: another process may write between two of them). For
   * symmetry with {@linkcode setMany} and the `getMany` of other stores;
   * it saves no work over a loop of `get`, which costs one native call per
   * key either way.
   *
   * @example
   * ```ts
   * import { SharedCache } from "../mod.ts";
   *
   * using cache = SharedCache.open("many", { capacity: 100, maxKeyBytes: 64, maxValueBytes: 64 });
   * cache.set("a", 1);
   * cache.getMany(["a", "b"]); // [1, undefined]
   * ```
   */
  getMany(keys: readonly (string | Uint8Array)[]): unknown[] {
    if (!Array.isArray(keys)) {
      throw new TypeError(`getMany: keys must be an array, got ${describe(keys)}`);
    }
    const values = new Array<unknown>(keys.length);
    for (let i = 0; i < keys.length; i++) values[i] = this.get(keys[i]);
    return values;
  }

  /**
   * Stores every `[key, value]` of `entries` under one acquisition of the
   * writer lock, instead of one per `set`: other processes see the entries
   * appear one by one, never half of one. Every key and value is checked
   * and encoded before the lock is taken, so a key or value that `set`
   * would refuse stores nothing at all. If the lock stays held beyond
   * `lockTimeoutMs`, nothing is stored and it throws `CacheError`
   * `LockTimeout` (a batch is not dropped silently). An entry whose new key
   * finds no room in its run of the hash table is dropped and counted in
   * `stats().droppedWrites`, as by `set`.
   *
   * @param entries `[key, value]` pairs (an array, a `Map`, any iterable).
   * @param options `ttlMs`: the time to live of every entry.
   * @returns How many entries were stored.
   * @throws {RangeError} If a key or value exceeds the limits (nothing stored).
   * @throws {TypeError} If a key or value cannot be stored (nothing stored).
   * @throws {CacheError} `LockTimeout` if the writer lock stays held beyond `lockTimeoutMs` (nothing stored).
   *
   * @example
   * ```ts
   * import { SharedCache } from "../mod.ts";
   *
   * using cache = SharedCache.open("batch", { capacity: 100, maxKeyBytes: 64, maxValueBytes: 64 });
   * cache.setMany([["a", 1], ["b", { two: 2 }]], { ttlMs: 60_000 }); // 2
   * cache.get("b"); // { two: 2 }
   * ```
   */
  setMany(
    entries: Iterable<readonly [string | Uint8Array, unknown]>,
    options?: SetOptions,
  ): number {
    checkOptionNames(options, SET_OPTIONS, "SharedCache.setMany options (the second argument)");
    // Materialised once: a retry after a move must see the same entries.
    const iterable = typeof entries === "object" && entries !== null &&
      typeof (entries as Iterable<unknown>)[Symbol.iterator] === "function";
    const list = iterable ? [...entries] : entries;
    return this.#movable(
      "setMany",
      () => this.#setMany(list as Iterable<readonly [string | Uint8Array, unknown]>, options),
    );
  }

  #setMany(
    entries: Iterable<readonly [string | Uint8Array, unknown]>,
    options?: SetOptions,
  ): number {
    checkOptionNames(options, SET_OPTIONS, "SharedCache.setMany options (the second argument)");
    const ttl = entryTtl(options?.ttlMs);
    if (
      entries === null || typeof (entries as Iterable<unknown>)?.[Symbol.iterator] !== "function"
    ) {
      throw new TypeError(
        `setMany: entries must be an iterable of [key, value], got ${describe(entries)}`,
      );
    }
    this.#checkUnlocked("setMany");
    // Encode everything first: the caller's toJSON may use this cache, and
    // a refusal must come before anything is stored.
    const keys: (string | Uint8Array)[] = [];
    const values: Uint8Array[] = [];
    for (const entry of entries) {
      if (!Array.isArray(entry) || entry.length !== 2) {
        throw new TypeError(
          `setMany: each entry must be a [key, value] pair, got ${describe(entry)}`,
        );
      }
      const [key, value] = entry;
      checkKeyType(key);
      const len = this.#codec.encode(value);
      if (len < 0) {
        throw new RangeError(
          `value for key ${describeKey(key)} is ${
            this.#codec.size(value)
          } bytes encoded, more than maxValueBytes ${this.#maxValueBytes}; nothing was stored`,
        );
      }
      // A copy: Buffer#slice would share the buffer the next encode overwrites.
      values.push(new Uint8Array(this.#val.subarray(0, len)));
      this.#encodeKey(key);
      keys.push(key);
    }
    this.#checkUnlocked("setMany");
    const handle = this.#open();
    if (keys.length === 0) return 0;
    const rc = this.#native.shmc_lock(handle);
    if (rc === -Status.retired) this.#fail(rc, "setMany");
    if (rc === -Status.lockTimeout) throw this.#lockTimeout("setMany (nothing was stored)");
    if (rc !== 0) this.#fail(rc, "setMany");
    let stored = 0;
    try {
      for (let i = 0; i < keys.length; i++) {
        const n = this.#encodeKey(keys[i]);
        this.#val.set(values[i]);
        const put = this.#native.shmc_put(handle, n, values[i].length, ttl, INSERT_SET);
        // Full: dropped, and counted natively in droppedWrites, as by set.
        if (put === 0) stored++;
        else if (put !== -Status.full) this.#fail(put, "setMany");
      }
    } finally {
      this.#native.shmc_unlock(handle);
    }
    return stored;
  }

  /**
   * The keys of the live entries, read from shared memory as the iteration
   * goes (see {@linkcode entries} for what concurrent writers may do).
   *
   * @example
   * ```ts
   * import { SharedCache } from "../mod.ts";
   *
   * using cache = SharedCache.open("listing", { capacity: 100, maxKeyBytes: 64, maxValueBytes: 64 });
   * cache.set("a", 1);
   * [...cache.keys()]; // ["a"]
   * ```
   */
  *keys(): IterableIterator<string | Uint8Array> {
    for (let from = 0;;) {
      const found = this.#scan(from, false);
      if (found === undefined) return;
      from = found.next;
      if (found.key !== undefined) yield found.key;
    }
  }

  /**
   * The `[key, value]` pairs of the live entries (not expired), in slot
   * order, read from shared memory as the iteration goes: one native call
   * per entry, each entry's key and value read together under the seqlock,
   * so an entry is never torn (a value from one write, a key from another).
   * Writers are not held up. What a concurrent writer (this process between
   * two steps, or any other process) may do to an iteration: an entry
   * written or removed during it may or may not be seen; an entry
   * overwritten is seen with its old or new value; a key removed and added
   * again may be seen twice (once per slot it lived in). Entries untouched
   * during the iteration are seen exactly once. Single-flight claims
   * (keys starting with "\u0000sf:") are not listed. Reads count no hits and
   * do not mark entries used. If the cache is destroyed or replaced during
   * the iteration, it goes on over the new region from its start. Closing
   * the cache ends the iteration with
   * `CacheError` `Closed`; a writer stuck beyond `lockTimeoutMs` with
   * `LockTimeout`.
   *
   * @example
   * ```ts
   * import { SharedCache } from "../mod.ts";
   *
   * using cache = SharedCache.open("listing2", { capacity: 100, maxKeyBytes: 64, maxValueBytes: 64 });
   * cache.set("a", 1);
   * cache.set("b", [2]);
   * new Map(cache.entries()); // Map { "a" => 1, "b" => [2] }
   * ```
   */
  *entries(): IterableIterator<[string | Uint8Array, unknown]> {
    for (let from = 0;;) {
      const found = this.#scan(from, true);
      if (found === undefined) return;
      from = found.next;
      if (found.key !== undefined) yield [found.key, found.value];
    }
  }

  /** The first live entry at slot `from` or above; `key` undefined for a claim or a foreign key. */
  #scan(
    from: number,
    withValue: boolean,
  ): { next: number; key: string | Uint8Array | undefined; value: unknown } | undefined {
    const handle = this.#open();
    let rc = this.#native.shmc_scan(handle, from, withValue ? 1 : 0);
    // Bound: each call reads a chunk of slots further on, and there are
    // at most `capacity` of them.
    while (rc === -Status.miss && this.#meta[1] === 1) {
      rc = this.#native.shmc_scan(handle, this.#meta[0], withValue ? 1 : 0);
    }
    if (rc === -Status.miss) return undefined;
    if (rc === -Status.lockTimeout) throw this.#lockTimeout("iteration");
    // The region was destroyed or replaced: go on over the new one, from
    // its start (the old cursor means nothing there).
    if (rc === -Status.retired) return this.#again("iteration", () => this.#scan(0, withValue));
    if (rc < 0) this.#fail(rc, "iteration");
    const next = this.#meta[0] + 1;
    let key = decodeKey(this.#key, this.#meta[1]);
    if (typeof key === "string" && key.startsWith(CLAIM_PREFIX)) key = undefined;
    const value = withValue && key !== undefined ? this.#codec.decode(rc) : undefined;
    return { next, key, value };
  }

  #lockTimeout(what: string): CacheError {
    return new CacheError(
      "LockTimeout",
      `cache ${
        JSON.stringify(this.#name)
      }: ${what}: the writer lock stayed held by a live process beyond the lock timeout`,
    );
  }

  /** Removes `key`; true if a live entry was removed. */
  delete(key: string | Uint8Array): boolean {
    this.#checkUnlocked("delete");
    const waited = this.#pending.size !== 0 && typeof key === "string" && this.#pending.delete(key);
    return this.#delete(key) || waited;
  }

  #delete(key: string | Uint8Array): boolean {
    const handle = this.#open();
    const n = this.#encodeKey(key);
    const rc = this.#native.shmc_del(handle, n);
    if (rc === 0) return true;
    if (rc === -Status.miss) return false;
    // Dropped, and counted natively in droppedWrites.
    if (rc === -Status.lockTimeout) return false;
    if (rc === -Status.retired) {
      return this.#again("delete", () => this.#delete(key), () => false);
    }
    return this.#fail(rc, "delete");
  }

  /** Removes every entry. Throws `CacheError` `LockTimeout` if the lock stays held beyond the bound. */
  clear(): void {
    this.#checkUnlocked("clear");
    this.#clear();
  }

  #clear(): void {
    const rc = this.#native.shmc_clear(this.#open());
    if (rc === -Status.retired) return this.#again("clear", () => this.#clear(), () => {});
    if (rc !== 0) this.#fail(rc, "clear");
    // Computations running now would store what the clear removed.
    clearFlights(this);
    this.#pending.clear();
  }

  /** The number of entries stored now (expired entries count until they are removed). */
  get size(): number {
    const rc = this.#native.shmc_size(this.#open());
    if (rc >= 0) return rc;
    if (rc === -Status.retired) return this.#again("size", () => this.size);
    return this.#fail(rc, "size");
  }

  /**
   * The counters. `hits`, `misses`, `memoHits`, `readTimeouts`,
   * `droppedWrites` and `lockTimeouts` are this handle's, or with
   * `{ allHandles: true }` summed over every handle that ever had the cache
   * open (any process, closed handles included: each handle counts in a
   * cache line of its own in the shared region); the others are the cache's.
   *
   * @param options `allHandles: true` for the whole cache's counts.
   * @returns A fresh object of counters.
   * @example
   * ```ts
   * import { SharedCache } from "../mod.ts";
   * using cache = SharedCache.open("stats-doc", { capacity: 10, maxKeyBytes: 16, maxValueBytes: 16 });
   * cache.get("nothing");
   * cache.stats().misses; // 1
   * cache.stats({ allHandles: true }).misses; // 1 or more: other processes count too
   * ```
   */
  stats(options: { allHandles?: boolean } = {}): CacheStats {
    const s = this.#stats;
    const rc = this.#native.shmc_stats(this.#open(), options.allHandles === true ? 1 : 0, s);
    if (rc === -Status.retired) return this.#again("stats", () => this.stats(options));
    if (rc !== 0) this.#fail(rc, "stats");
    return statsFromVector(s);
  }

  /**
   * Takes the cross-process writer lock and returns a guard that releases
   * it on disposal. Throws `CacheError` `LockTimeout` when a live owner
   * keeps it beyond `lockTimeoutMs`, and `LockHeld` when this process
   * already holds it.
   */
  lock(): CacheLock {
    const handle = this.#open();
    if (this.#lockState.held) {
      throw new CacheError(
        "LockHeld",
        `cache ${JSON.stringify(this.#name)} is already locked by this process`,
      );
    }
    const rc = this.#native.shmc_lock(handle);
    if (rc === -Status.retired) return this.#again("lock", () => this.lock());
    if (rc === -Status.lockTimeout) {
      throw new CacheError(
        "LockTimeout",
        `cache ${
          JSON.stringify(this.#name)
        }: the writer lock stayed held by a live process beyond the lock timeout`,
      );
    }
    if (rc !== 0) this.#fail(rc, "lock");
    this.#lockState.held = true;
    this.#finalized.holding = true;
    const ops: LockedOps = {
      name: this.#name,
      get: (key) => this.get(key),
      has: (key) => this.has(key),
      set: (key, value, ttlMs) => this.#set(key, value, ttlMs),
      delete: (key) => this.#delete(key),
      clear: () => this.#clear(),
      unlock: () => this.#unlock(),
    };
    return this.#guard = new CacheLock(ops);
  }

  #unlock(): void {
    this.#guard = undefined;
    this.#lockState.held = false;
    this.#finalized.holding = false;
    if (this.#handle !== null) this.#native.shmc_unlock(this.#handle);
  }

  /**
   * Checks every structural invariant of the shared region. With
   * `{ repair: true }` a damaged structure is rebuilt from its complete
   * entries.
   */
  verify(options: { repair?: boolean } = {}): VerifyResult {
    checkOptionNames(options, ["repair"], "SharedCache.verify options");
    const handle = this.#open();
    const out = new Uint8Array(16_384);
    const outLen = new Uint32Array(1);
    const rc = this.#native.shmc_verify(handle, options.repair ? 1 : 0, out, out.length, outLen);
    if (rc === -Status.retired) return this.#again("verify", () => this.verify(options));
    if (rc < 0) this.#fail(rc, "verify");
    const problems = textDecoder.decode(out.subarray(0, outLen[0])).split("\n").filter((line) =>
      line.length > 0
    );
    if (problems.length < rc) problems.push(`... ${rc - problems.length} more`);
    const repaired = options.repair === true && rc > 0;
    if (!repaired) return { ok: rc === 0, problems, repaired };
    const after = this.#native.shmc_verify(handle, 0, out, out.length, outLen);
    return { ok: after === 0, problems, repaired };
  }

  /**
   * Recovers the writer lock now if its owner died (readers and writers
   * also do this by themselves when they have to wait). True if it did.
   */
  recover(): boolean {
    const rc = this.#native.shmc_recover(this.#open());
    if (rc === -Status.retired) return this.#again("recover", () => this.recover());
    if (rc < 0) this.#fail(rc, "recover");
    return rc === 1;
  }

  /** A token that identifies this open handle to other processes (see {@linkcode isHandleAlive}). */
  get handleToken(): string {
    return `h${this.#native.shmc_handle_slot(this.#open())}`;
  }

  /**
   * True while the handle that produced `token` is open in a live process.
   * A token of a dead handle may later be reused by a new handle.
   */
  isHandleAlive(token: string): boolean {
    const slot = Number(token.slice(1));
    if (token[0] !== "h" || !Number.isInteger(slot) || slot < 1 || slot > 4095) {
      throw new TypeError(`not a handle token: ${JSON.stringify(token)}`);
    }
    return this.#native.shmc_slot_alive(this.#open(), slot) === 1;
  }

  /** True once {@linkcode close} ran. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /** Releases a held lock, unmaps the region. Idempotent. */
  close(): void {
    const handle = this.#handle;
    if (handle === null) return;
    if (this.#guard !== undefined) this.#guard.release();
    this.#handle = null;
    finalizer.unregister(this.#unregister);
    this.#native.shmc_close(handle);
    this.#memoVal = [];
    clearFlights(this);
    this.#pending.clear();
  }

  /** Closes the cache (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

function checkIncrement(by: unknown): asserts by is number {
  if (typeof by !== "number") {
    throw new TypeError(`increment: by must be a number, got ${describe(by)}`);
  }
  if (!Number.isFinite(by)) {
    throw new RangeError(`increment: by must be a finite number, got ${by}`);
  }
}
