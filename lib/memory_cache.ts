/**
 * An in-process cache with the same API as `SharedCache`: SIEVE eviction,
 * per-entry TTL, statistics, and no native library.
 *
 * Values are stored as they are (not encoded or copied), so a `MemoryCache`
 * holds anything, including objects that `SharedCache` cannot encode, and a
 * `get` returns the very object that was `set`.
 *
 * SIEVE (Zhang et al., NSDI 2024) keeps the entries in one FIFO queue, newest
 * at the head. A hit only sets the entry's `visited` flag, so a hit moves
 * nothing and allocates nothing. To make room, a hand walks from the oldest
 * entry towards the newest: it clears the flag of each visited entry it
 * passes and evicts the first unvisited one; the hand stays where it stopped
 * and wraps around to the oldest entry at the head. One eviction passes each
 * entry at most once before it finds an unvisited one (it cleared every flag
 * on the way), so it takes at most `size + 1` steps.
 *
 * @module
 */

import { describe } from "./_describe.ts";
import { checkOptionNames } from "./_options.ts";
import { CacheError } from "./errors.ts";
import {
  clearFlights,
  getOrSetOn,
  type GetOrSetOptions,
  newFlightCounts,
} from "./_single_flight.ts";

/** Options of {@linkcode MemoryCache}. */
export interface MemoryCacheOptions {
  /**
   * The maximum number of entries; a positive integer. Setting a new key in a
   * full cache evicts one entry (SIEVE). Default: 1000.
   */
  capacity?: number;
  /** Another name for `capacity` (as in `@std/cache`'s `LruCache`); give one of the two. */
  maxSize?: number;
  /**
   * The time to live of every entry in milliseconds, a positive number, unless
   * `set` gives its own. Default: entries do not expire.
   */
  ttlMs?: number;
  /**
   * The clock that times entries, in milliseconds: a function returning a
   * number that never decreases. Default: `performance.now`, which the wall
   * clock's changes do not move. Give your own to control time, in tests or
   * in a simulation.
   *
   * @example A clock the caller advances
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * let time = 0;
   * const cache = new MemoryCache<number>({ ttlMs: 100, clock: () => time });
   * cache.set("k", 1);
   * time = 99;
   * cache.get("k"); // 1
   * time = 100;
   * cache.get("k"); // undefined
   * ```
   */
  clock?: () => number;
}

/** Options of {@linkcode MemoryCache.prototype.set}. */
export interface MemoryCacheSetOptions {
  /** This entry's time to live in milliseconds, a positive number (`Infinity`: never expires); overrides the cache's `ttlMs`. */
  ttlMs?: number;
}

/** Counters of a {@linkcode MemoryCache}, as returned by {@linkcode MemoryCache.prototype.stats}. */
export interface MemoryCacheStats {
  /** `get` calls that found a live entry. */
  hits: number;
  /** `get` calls that found no entry or an expired one. */
  misses: number;
  /** `set` calls. */
  sets: number;
  /** `delete` calls that removed an entry. */
  deletes: number;
  /** Entries removed by SIEVE to make room. */
  evictions: number;
  /** Expired entries removed (on access, or passed by the eviction hand). */
  expirations: number;
  /** Results of `getOrSet` returned without being stored (keys or values the cache refused). */
  unstoredResults: number;
  /** Entries stored now (see {@linkcode MemoryCache.prototype.size}). */
  size: number;
  /** The maximum number of entries. */
  capacity: number;
}

/** A key of a {@linkcode MemoryCache}: a string, or bytes compared by content. */
export type MemoryCacheKey = string | Uint8Array;

/** The default `capacity` of a {@linkcode MemoryCache}. */
export const DEFAULT_MEMORY_CACHE_CAPACITY = 1000;

const NEVER = Number.POSITIVE_INFINITY;
const CACHE_OPTIONS: readonly (keyof MemoryCacheOptions)[] = [
  "capacity",
  "maxSize",
  "ttlMs",
  "clock",
];
const SET_OPTIONS: readonly (keyof MemoryCacheSetOptions)[] = ["ttlMs"];
const monotonic: () => number = performance.now.bind(performance);

/** One entry, also a node of the SIEVE queue (`prev` is newer, `next` is older). */
class Entry<V> {
  key: string;
  /** Whether `key` lives in the map of byte keys. */
  binary: boolean;
  value: V;
  /** The deadline on the cache's clock, or `NEVER`. */
  expiresAt: number;
  visited = false;
  prev: Entry<V> | null = null;
  next: Entry<V> | null = null;

  constructor(key: string, binary: boolean, value: V, expiresAt: number) {
    this.key = key;
    this.binary = binary;
    this.value = value;
    this.expiresAt = expiresAt;
  }
}

/**
 * A cache in process memory with the API of `SharedCache`:
 * `get`/`set`/`has`/`delete`/`clear`/`size`/`stats`/`close`, a per-entry time
 * to live, and SIEVE eviction. It also satisfies the `MemoizationCache` shape
 * of `@std/cache` (`has`/`get`/`set`/`delete`), so it plugs into code written
 * for that.
 *
 * Keys are strings or `Uint8Array`s. A `Uint8Array` key is compared by
 * content, never by identity, and is never equal to a string key, even to
 * the string its bytes encode (as in `SharedCache`, which tags each key with
 * its type). Strings are compared as JavaScript strings. String keys are the
 * fast path: a byte key costs a string conversion per call.
 *
 * Expiry uses the monotonic clock (`performance.now()`, or the `clock`
 * option), so changes of the wall clock do not expire or revive entries. Expired entries are removed
 * when they are accessed or when the eviction hand passes them.
 *
 * @example Basic use
 * ```ts
 * import { MemoryCache } from "./memory_cache.ts";
 *
 * using cache = new MemoryCache<number>({ capacity: 2, ttlMs: 60_000 });
 * cache.set("a", 1);
 * cache.set("b", 2, { ttlMs: 10 });
 * cache.get("a"); // 1 (and "a" is now visited)
 * cache.set("c", 3); // full: evicts "b", the oldest unvisited entry
 * cache.has("b"); // false
 * cache.stats().evictions; // 1
 * ```
 *
 * @typeParam V The type of the values.
 */
export class MemoryCache<V = unknown> {
  #strings = new Map<string, Entry<V>>();
  /** Byte keys, keyed by their Latin-1 string (one char per byte). */
  #bytes = new Map<string, Entry<V>>();
  #capacity: number;
  #ttlMs: number;
  #now: () => number;
  /** The newest entry. */
  #head: Entry<V> | null = null;
  /** The oldest entry. */
  #tail: Entry<V> | null = null;
  /** Where the next eviction starts; `null` means at the oldest entry. */
  #hand: Entry<V> | null = null;
  #closed = false;
  #hits = 0;
  #misses = 0;
  #sets = 0;
  #deletes = 0;
  #evictions = 0;
  #expirations = 0;
  /** The counters of getOrSet (see _single_flight.ts). */
  readonly #flightCounts = newFlightCounts();

  /**
   * Creates an empty cache.
   *
   * @param options The capacity (or `maxSize`), the default time to live and the clock.
   * @throws {RangeError} If `capacity`, `maxSize` or `ttlMs` is out of range, or `capacity` and `maxSize` differ.
   * @throws {TypeError} If `options` is not an object or names an unknown option, or `clock` is not a function.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache<string>({ maxSize: 100 });
   * cache.stats().capacity; // 100
   * ```
   */
  constructor(options: MemoryCacheOptions = {}) {
    checkOptionNames(options, CACHE_OPTIONS, "MemoryCache options");
    const { capacity, maxSize, ttlMs, clock } = options;
    if (clock !== undefined && typeof clock !== "function") {
      throw new TypeError(`MemoryCache clock must be a function, got ${describe(clock)}`);
    }
    if (capacity !== undefined) checkCapacity("capacity", capacity);
    if (maxSize !== undefined) checkCapacity("maxSize", maxSize);
    if (capacity !== undefined && maxSize !== undefined && capacity !== maxSize) {
      throw new RangeError(
        `MemoryCache capacity and maxSize name the same limit and must agree, got ${capacity} and ${maxSize}`,
      );
    }
    if (ttlMs !== undefined) checkTtl("MemoryCache ttlMs", ttlMs);
    this.#capacity = capacity ?? maxSize ?? DEFAULT_MEMORY_CACHE_CAPACITY;
    this.#ttlMs = ttlMs ?? NEVER;
    this.#now = clock ?? monotonic;
  }

  /**
   * The number of entries stored. Expired entries count until they are
   * accessed or passed by the eviction hand.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache();
   * cache.set("a", 1);
   * cache.size; // 1
   * ```
   */
  get size(): number {
    return this.#strings.size + this.#bytes.size;
  }

  /**
   * Returns the value stored under `key`, or `undefined` if there is none or
   * it expired. A hit marks the entry visited (SIEVE) and allocates nothing
   * for a string key.
   *
   * @throws {TypeError} If `key` is not a string or `Uint8Array`.
   * @throws {CacheError} With code "Closed" if the cache is closed.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache<number[]>();
   * const list = [1, 2];
   * cache.set("list", list);
   * cache.get("list") === list; // true: values are stored as they are
   * cache.get("other"); // undefined
   * ```
   */
  get(key: MemoryCacheKey): V | undefined {
    const entry = this.#find(key);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    entry.visited = true;
    return entry.value;
  }

  /**
   * Whether a live entry is stored under `key`. Unlike `get`, it does not
   * mark the entry visited or count a hit or a miss.
   *
   * @throws {TypeError} If `key` is not a string or `Uint8Array`.
   * @throws {CacheError} With code "Closed" if the cache is closed.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache();
   * cache.set(new Uint8Array([1, 2]), "bytes");
   * cache.has(new Uint8Array([1, 2])); // true: compared by content
   * ```
   */
  has(key: MemoryCacheKey): boolean {
    return this.#find(key) !== undefined;
  }

  /**
   * Stores `value` under `key`, replacing any entry there. A new key in a
   * full cache first evicts one entry (SIEVE). Replacing an entry counts as a
   * use of it (it is marked visited).
   *
   * @param options `ttlMs`: this entry's time to live, instead of the cache's.
   * @throws {TypeError} If `key` is not a string or `Uint8Array`.
   * @throws {CacheError} With code "Closed" if the cache is closed.
   * @throws {RangeError} If `options.ttlMs` is not a positive number.
   * @throws {TypeError} If `options` is not an object or names an unknown option.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache<string>({ ttlMs: 60_000 });
   * cache.set("session", "abc", { ttlMs: 5_000 });
   * ```
   */
  set(key: MemoryCacheKey, value: V, options?: MemoryCacheSetOptions): this {
    let ttlMs = this.#ttlMs;
    checkOptionNames(options, SET_OPTIONS, "MemoryCache.set options (the third argument)");
    if (options !== undefined && options.ttlMs !== undefined) {
      checkTtl("MemoryCache.set ttlMs", options.ttlMs);
      ttlMs = options.ttlMs;
    }
    const expiresAt = ttlMs === NEVER ? NEVER : this.#now() + ttlMs;
    const binary = typeof key !== "string";
    const mapKey = binary ? latin1(key) : key;
    this.#assertOpen();
    this.#sets++;
    const map = binary ? this.#bytes : this.#strings;
    const entry = map.get(mapKey);
    if (entry !== undefined) {
      entry.value = value;
      entry.expiresAt = expiresAt;
      entry.visited = true;
      return this;
    }
    if (this.size >= this.#capacity) this.#evict();
    const added = new Entry(mapKey, binary, value, expiresAt);
    map.set(mapKey, added);
    this.#pushHead(added);
    return this;
  }

  /**
   * The value under `key`; on a miss, `fn()`'s result, stored under `key`
   * first. Concurrent misses of one key share one call of `fn`, each wait
   * bounded by `waitTimeoutMs` (then the waiter computes by itself), as in
   * `SharedCache.getOrSet`, within this process.
   *
   * - `fn` may be synchronous (its result is returned as it is) or
   *   asynchronous (a promise is returned; declare `fn` `async` so that a
   *   hit is a promise too, else a hit returns the bare value).
   * - A failure of `fn` is not stored: every caller that joined gets it,
   *   and the next call computes again.
   * - If `fn`, directly or through other `getOrSet` calls or memoized
   *   functions, asks for the key it is computing, that call fails with
   *   `RecursiveCallError` instead of waiting for itself.
   *
   * @param key A string key.
   * @param fn Computes the value on a miss; called with no arguments.
   * @param options `ttlMs` of the stored result, `waitTimeoutMs` of waits.
   * @returns The stored or computed value (a promise of it for an `async` fn).
   * @throws {TypeError} If `key` is not a string or `fn` not a function, or an option is unknown.
   * @throws {RangeError} If `ttlMs` or `waitTimeoutMs` is out of range.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache<number>();
   * let calls = 0;
   * const load = async () => ++calls;
   * await Promise.all([cache.getOrSet("k", load), cache.getOrSet("k", load)]); // [1, 1]
   * cache.getOrSet("sync", () => 7, { ttlMs: 1000 }); // 7
   * ```
   */
  getOrSet<T extends V>(key: string, fn: () => Promise<T>, options?: GetOrSetOptions): Promise<T>;
  /** `getOrSet` with a synchronous `fn`: returns the value itself (see above). */
  getOrSet<T extends V>(key: string, fn: () => T, options?: GetOrSetOptions): T;
  getOrSet<T extends V>(
    key: string,
    fn: () => T | Promise<T>,
    options?: GetOrSetOptions,
  ): T | Promise<T> {
    return getOrSetOn(this, key, fn, options, this.#flightCounts) as T | Promise<T>;
  }

  /**
   * Adds `by` to the number stored under `key` and returns the new value;
   * an absent key counts as 0. The entry keeps its expiry: `ttlMs` (or the
   * cache's) applies only to an entry this call creates, as in
   * `SharedCache.increment`.
   *
   * @param key The counter's key.
   * @param by The amount to add, a finite number (negative to subtract). Default: 1.
   * @param options `ttlMs`: the time to live of a counter this call creates.
   * @returns The new value.
   * @throws {TypeError} If the value under `key` is not a number (nothing is changed), or `by` is not a number.
   * @throws {RangeError} If `by` or the result is not finite.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache<number>();
   * cache.increment("hits"); // 1
   * cache.increment("hits", 10); // 11
   * ```
   */
  increment(key: MemoryCacheKey, by: number = 1, options?: MemoryCacheSetOptions): number {
    if (typeof by !== "number") {
      throw new TypeError(`MemoryCache.increment: by must be a number, got ${describe(by)}`);
    }
    if (!Number.isFinite(by)) {
      throw new RangeError(`MemoryCache.increment: by must be a finite number, got ${by}`);
    }
    checkOptionNames(options, SET_OPTIONS, "MemoryCache.increment options (the third argument)");
    if (options?.ttlMs !== undefined) checkTtl("MemoryCache.increment ttlMs", options.ttlMs);
    const entry = this.#find(key);
    if (entry === undefined) {
      this.set(key, by as V, options);
      return by;
    }
    const current = entry.value;
    if (typeof current !== "number") {
      throw new TypeError(
        `MemoryCache.increment: the value under key ${describe(key)} is ${
          describe(current)
        }, not a number; nothing was changed`,
      );
    }
    const next = current + by;
    if (!Number.isFinite(next)) {
      throw new RangeError(
        `MemoryCache.increment: ${current} + ${by} under key ${
          describe(key)
        } is not finite; nothing was changed`,
      );
    }
    this.#sets++;
    entry.value = next as V;
    entry.visited = true;
    return next;
  }

  /**
   * The values under `keys`, in order (`undefined` for a miss): a `get` per
   * key, for symmetry with `SharedCache.getMany`.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache<number>();
   * cache.set("a", 1);
   * cache.getMany(["a", "b"]); // [1, undefined]
   * ```
   */
  getMany(keys: readonly MemoryCacheKey[]): (V | undefined)[] {
    if (!Array.isArray(keys)) {
      throw new TypeError(`MemoryCache.getMany: keys must be an array, got ${describe(keys)}`);
    }
    const values = new Array<V | undefined>(keys.length);
    for (let i = 0; i < keys.length; i++) values[i] = this.get(keys[i]);
    return values;
  }

  /**
   * Stores every `[key, value]` of `entries`, as `set` would, after checking
   * every key first (a bad key stores nothing).
   *
   * @param entries `[key, value]` pairs (an array, a `Map`, any iterable).
   * @param options `ttlMs`: the time to live of every entry.
   * @returns How many entries were stored.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache<number>();
   * cache.setMany([["a", 1], ["b", 2]]); // 2
   * ```
   */
  setMany(
    entries: Iterable<readonly [MemoryCacheKey, V]>,
    options?: MemoryCacheSetOptions,
  ): number {
    checkOptionNames(options, SET_OPTIONS, "MemoryCache.setMany options (the second argument)");
    if (options?.ttlMs !== undefined) checkTtl("MemoryCache.setMany ttlMs", options.ttlMs);
    if (
      entries === null || typeof (entries as Iterable<unknown>)?.[Symbol.iterator] !== "function"
    ) {
      throw new TypeError(
        `MemoryCache.setMany: entries must be an iterable of [key, value], got ${
          describe(entries)
        }`,
      );
    }
    const pairs = [...entries];
    for (const pair of pairs) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new TypeError(
          `MemoryCache.setMany: each entry must be a [key, value] pair, got ${describe(pair)}`,
        );
      }
      if (typeof pair[0] !== "string") latin1(pair[0]);
    }
    this.#assertOpen();
    for (const [key, value] of pairs) this.set(key, value, options);
    return pairs.length;
  }

  /**
   * The keys of the live entries (see {@linkcode entries}).
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache();
   * cache.set("a", 1);
   * [...cache.keys()]; // ["a"]
   * ```
   */
  *keys(): IterableIterator<MemoryCacheKey> {
    for (const [key] of this.entries()) yield key;
  }

  /**
   * The `[key, value]` pairs of the live (not expired) entries: string keys
   * in the order they were first stored, then byte keys (as new
   * `Uint8Array`s). An iteration sees the cache as it goes, like a `Map`'s:
   * an entry added during it is seen, one removed before it is reached is
   * not, one overwritten is seen with its new value, and a key removed and
   * added again may be seen twice. Entries untouched during the iteration
   * are seen exactly once. Reads count no hits and do not mark entries used.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache<number>();
   * cache.set("a", 1);
   * cache.set("b", 2);
   * [...cache.entries()]; // [["a", 1], ["b", 2]]
   * ```
   */
  *entries(): IterableIterator<[MemoryCacheKey, V]> {
    this.#assertOpen();
    for (const entry of this.#strings.values()) {
      if (entry.expiresAt === NEVER || this.#now() < entry.expiresAt) {
        yield [entry.key, entry.value];
      }
    }
    for (const entry of this.#bytes.values()) {
      if (entry.expiresAt === NEVER || this.#now() < entry.expiresAt) {
        yield [bytesOf(entry.key), entry.value];
      }
    }
  }

  /**
   * Removes the entry under `key`.
   *
   * @returns Whether there was a live entry.
   * @throws {TypeError} If `key` is not a string or `Uint8Array`.
   * @throws {CacheError} With code "Closed" if the cache is closed.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache();
   * cache.set("a", 1);
   * cache.delete("a"); // true
   * cache.delete("a"); // false
   * ```
   */
  delete(key: MemoryCacheKey): boolean {
    const entry = this.#find(key);
    if (entry === undefined) return false;
    this.#remove(entry);
    this.#deletes++;
    return true;
  }

  /**
   * Removes every entry. The counters of `stats()` are kept.
   *
   * @throws {CacheError} With code "Closed" if the cache is closed.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache();
   * cache.set("a", 1);
   * cache.clear();
   * cache.size; // 0
   * ```
   */
  clear(): void {
    this.#assertOpen();
    this.#strings.clear();
    this.#bytes.clear();
    this.#head = this.#tail = this.#hand = null;
    // Computations running now would store what the clear removed.
    clearFlights(this);
  }

  /**
   * Returns a snapshot of the counters.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache();
   * cache.get("a");
   * cache.stats().misses; // 1
   * ```
   */
  stats(): MemoryCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      sets: this.#sets,
      deletes: this.#deletes,
      evictions: this.#evictions,
      expirations: this.#expirations,
      unstoredResults: this.#flightCounts.oversizeSkips + this.#flightCounts.unstorableSkips,
      size: this.size,
      capacity: this.#capacity,
    };
  }

  /**
   * Drops every entry and closes the cache: later calls of `get`, `set`,
   * `has`, `delete` and `clear` throw. Closing twice is a no-op.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * const cache = new MemoryCache();
   * cache.close();
   * cache.close(); // no-op
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.clear();
    this.#closed = true;
  }

  /**
   * Calls {@linkcode MemoryCache.prototype.close}, for `using`.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   *
   * {
   *   using cache = new MemoryCache();
   *   cache.set("a", 1);
   * } // closed here
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Returns the live entry under `key`, removing it if it expired. */
  #find(key: MemoryCacheKey): Entry<V> | undefined {
    let entry: Entry<V> | undefined;
    if (typeof key === "string") {
      entry = this.#strings.get(key);
    } else {
      entry = this.#bytes.get(latin1(key));
    }
    if (entry === undefined) {
      // A closed cache is empty, so the check costs nothing on a hit.
      this.#assertOpen();
      return undefined;
    }
    if (entry.expiresAt !== NEVER && this.#now() >= entry.expiresAt) {
      this.#remove(entry);
      this.#expirations++;
      return undefined;
    }
    return entry;
  }

  /** Removes one entry to make room: an expired one or the first unvisited one from the hand on. */
  #evict(): void {
    // Bound: the walk clears the flag of every visited entry it passes, so
    // after at most `size` steps it reaches an entry it has already cleared.
    let node = this.#hand ?? this.#tail;
    const t = this.#now();
    for (let steps = 0; node !== null && steps <= this.size; steps++) {
      const expired = node.expiresAt !== NEVER && t >= node.expiresAt;
      if (expired || !node.visited) {
        if (expired) this.#expirations++;
        else this.#evictions++;
        this.#hand = node;
        this.#remove(node); // moves the hand on to the newer neighbour
        return;
      }
      node.visited = false;
      node = node.prev ?? this.#tail;
    }
    throw new Error(
      `MemoryCache invariant broken: the SIEVE hand found no entry to evict among ${this.size}`,
    );
  }

  #pushHead(entry: Entry<V>): void {
    entry.next = this.#head;
    if (this.#head !== null) this.#head.prev = entry;
    this.#head = entry;
    if (this.#tail === null) this.#tail = entry;
  }

  #remove(entry: Entry<V>): void {
    (entry.binary ? this.#bytes : this.#strings).delete(entry.key);
    if (this.#hand === entry) this.#hand = entry.prev;
    if (entry.prev !== null) entry.prev.next = entry.next;
    else this.#head = entry.next;
    if (entry.next !== null) entry.next.prev = entry.prev;
    else this.#tail = entry.prev;
    entry.prev = entry.next = null;
  }

  #assertOpen(): void {
    if (this.#closed) throw new CacheError("Closed", "MemoryCache is closed");
  }
}

/** The bytes of a map key of a byte key (see {@linkcode latin1}). */
function bytesOf(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** One char per byte: the map key of a byte key. */
function latin1(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`MemoryCache key must be a string or Uint8Array, got ${describe(bytes)}`);
  }
  let text = "";
  // Chunks keep the argument count of `fromCharCode` far below engine limits.
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return text;
}

function checkCapacity(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`MemoryCache ${name} must be a positive integer, got ${describe(value)}`);
  }
}

function checkTtl(name: string, value: number): void {
  if (typeof value !== "number" || !(value > 0)) {
    throw new RangeError(
      `${name} must be a positive number of milliseconds, got ${describe(value)}`,
    );
  }
}
