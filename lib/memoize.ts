/**
 * `memoize()` for synchronous and asynchronous functions, and the
 * `@memoized` method decorator, over an in-process {@linkcode MemoryCache}
 * or a cross-process `SharedCache`.
 *
 * - A hit returns the stored value without calling the function; for an
 *   asynchronous function, a resolved promise of it.
 * - Concurrent calls of an asynchronous function with the same key share one
 *   call (single-flight). A rejection is never cached: every caller that
 *   joined the call gets it, and the next call tries again.
 * - With a shared cache, processes that miss the same key at once also share
 *   one call: one computes, the others wait for its value (see
 *   `_single_flight.ts` for the protocol, its timeout, and what happens when
 *   the computing process dies).
 * - A result or key too large for the shared cache is returned, not cached,
 *   and counted in `stats().oversizeSkips`; a result the cache's codec
 *   cannot store, in `stats().unstorableSkips`. The caller sees no error.
 * - A call that would wait for a computation it is itself part of (the
 *   function asks for its own key, directly or through other memoized
 *   functions or `getOrSet` calls) fails at once with `RecursiveCallError`,
 *   which is not cached. Every other wait, in this process or for another
 *   process, lasts at most `waitTimeoutMs`; then the caller computes.
 *
 * The machinery is `getOrSet`'s (`_single_flight.ts`): memoize derives the
 * key and keeps the counters.
 *
 * The default key is derived from all arguments (see `_key.ts` for the
 * rules): deterministic across processes and runtimes, type-tagged,
 * independent of object key order, and a TypeError naming the argument for
 * what it cannot encode faithfully.
 *
 * @module
 */

import { describe } from "./_describe.ts";
import { checkOptionNames } from "./_options.ts";
import { deriveKey, encodeKeyPart, memoizeKey } from "./_key.ts";
import {
  DEFAULT_WAIT_TIMEOUT_MS,
  type FlightCall,
  type FlightCounts,
  FlightGroup,
  isAsyncFunction,
  newFlightCounts,
  supportsSingleFlight,
} from "./_single_flight.ts";
import { DEFAULT_MEMORY_CACHE_CAPACITY, MemoryCache } from "./memory_cache.ts";
import { SharedCache } from "./cache.ts";

export { memoizeKey };

/**
 * Any function or method, the bound of what {@linkcode memoize} accepts.
 *
 * @example
 * ```ts
 * import type { AnyFunction } from "./memoize.ts";
 * const fns: AnyFunction[] = [(a: number) => a + 1, () => "x"];
 * ```
 */
// deno-lint-ignore no-explicit-any
export type AnyFunction = (this: any, ...args: any[]) => any;

/**
 * The cache operations `memoize` uses: the `MemoizationCache` shape of
 * `@std/cache` (`has`/`get`/`set`/`delete`) with an optional time to live per
 * `set`, plus `clear` and `size` when the cache has them. `MemoryCache` and
 * `SharedCache` have all of it; so does a `Map`.
 *
 * A `set` that throws a `RangeError` (a key or value too large for the cache)
 * makes `memoize` return the value without caching it. A cache that also has
 * `handleToken` and `isHandleAlive` (as `SharedCache` does) gets single-flight
 * across processes.
 *
 * @example
 * ```ts
 * import { memoize, type MemoizeCache } from "./memoize.ts";
 *
 * const cache: MemoizeCache = new Map<string, unknown>();
 * const double = memoize((n: number) => n * 2, { cache });
 * double(2); // 4, stored in `cache`
 * ```
 */
export interface MemoizeCache {
  /** The value under `key`, or `undefined`. */
  get(key: string): unknown;
  /** Stores `value` under `key`; throws a RangeError if it does not fit. */
  set(key: string, value: unknown, options?: { ttlMs?: number }): unknown;
  /** Whether `key` has a value (tells a stored `undefined` from a miss). */
  has(key: string): boolean;
  /** Removes `key`. */
  delete(key: string): unknown;
  /** Removes every entry; needed by the memoized function's `clear()`. */
  clear?(): void;
  /** The number of entries, reported by `stats().size`. */
  readonly size?: number;
}

/**
 * Options passed to `SharedCache.open` when `memoize` opens a shared cache
 * itself (`cache: "shared"`). Every process that opens one name must pass the
 * same `maxSize`, `ttlMs`, `maxKeyBytes` and `maxValueBytes`, or the open
 * throws `CacheError` `Mismatch`; the defaults are fixed so that processes
 * that leave them out agree.
 */
export interface MemoizeSharedOptions {
  /** The directory of the cache files (default: SharedCache's). */
  dir?: string;
  /** The largest key in UTF-8 bytes; a call whose key is larger is not cached. Default: 256. */
  maxKeyBytes?: number;
  /** The largest encoded result in bytes; a larger result is returned, not cached. Default: 4096. */
  maxValueBytes?: number;
  /** How long to wait for the cache's writer lock, in milliseconds (default: SharedCache's). */
  lockTimeoutMs?: number;
  /**
   * How results are encoded (see `SharedCacheOptions.codec`): `"structured"`
   * stores results holding `Date`, `Map`, `Set`, `bigint`, ... that the
   * default `"json"` refuses (such a result is returned, not cached).
   */
  codec?: "json" | "structured";
  /**
   * Hits return deeply frozen results, the same object for repeated hits on
   * an unchanged entry (see `SharedCacheOptions.immutable`). Default false.
   */
  immutable?: boolean;
}

/**
 * Options of {@linkcode memoize} and {@linkcode memoized}.
 *
 * @typeParam This The type of `this` in the function.
 * @typeParam Args The parameter types of the function.
 */
export interface MemoizeOptionsOf<This, Args extends unknown[]> {
  /**
   * Where results are stored:
   * - `"memory"` (the default): a new {@linkcode MemoryCache} of `maxSize`
   *   entries, private to this function and this process;
   * - `"shared"`: a `SharedCache` named `name`, opened at the first call,
   *   shared by every process that memoizes with that name;
   * - a cache instance ({@linkcode MemoryCache}, `SharedCache`, or anything
   *   with the {@linkcode MemoizeCache} shape). Its entries are keyed by the
   *   arguments only, so functions sharing one instance need keys that tell
   *   them apart (a `key` option with a prefix).
   */
  cache?: "memory" | "shared" | MemoizeCache;
  /**
   * The name of the shared cache for `cache: "shared"`. When omitted it is
   * derived from the function: `memo-<function name>-<hash of its source>`,
   * e.g. `memo-loadUser-1x2k9q0wz7n`. So processes running the same code
   * agree on it, and editing the function starts a new cache. But: functions
   * with the same name and source (closures made by one factory) get the same
   * name and would mix their results; Bun and Deno transpile TypeScript
   * differently, so their derived names differ. Pass a name in both cases.
   */
  name?: string;
  /** The capacity of a cache that `memoize` creates, in entries; a positive integer. Default: 1000. */
  maxSize?: number;
  /** The time to live of each result in milliseconds, a positive number. Default: no expiry. */
  ttlMs?: number;
  /**
   * Computes the key of a call (called with the call's `this`), instead of
   * the default derivation from all arguments. It must return a string, not
   * starting with U+0000 (reserved for single-flight claims).
   */
  key?: (this: This, ...args: Args) => string;
  /**
   * Whether the function returns promises. Functions declared `async` are
   * detected; other functions are learned from their first call that
   * returns a promise. Before that call, a hit (which can come from another
   * process or a cache instance that you passed) returns the stored value
   * unwrapped, so set `async: true` for a function that returns a promise
   * without being declared `async`.
   */
  async?: boolean;
  /**
   * Single-flight across processes, for a shared cache: whether a process
   * that misses waits for another that is already computing the same key.
   * Default: true.
   */
  singleFlight?: boolean;
  /**
   * How long a call waits for a computation of the same key already
   * running, in this process or another, before it computes by itself, in
   * milliseconds; also the lifetime of a cross-process claim. Default:
   * 10 000.
   */
  waitTimeoutMs?: number;
  /** Options of the shared cache that `memoize` opens for `cache: "shared"`. */
  shared?: MemoizeSharedOptions;
}

/**
 * Options of {@linkcode memoize} for a function type `F`.
 *
 * @example
 * ```ts
 * import type { MemoizeOptions } from "./memoize.ts";
 *
 * const options: MemoizeOptions<(id: number) => string> = {
 *   maxSize: 100,
 *   key: (id) => String(id),
 * };
 * ```
 */
export type MemoizeOptions<F extends AnyFunction> = MemoizeOptionsOf<
  ThisParameterType<F>,
  Parameters<F>
>;

/** Counters of a memoized function, as returned by its `stats()`. */
export interface MemoizeStats {
  /** Calls answered from the cache. */
  hits: number;
  /** Calls that found no value in the cache (they joined a flight or called the function). */
  misses: number;
  /** Calls of the original function. */
  calls: number;
  /** Calls of the original function that threw or rejected. */
  errors: number;
  /** Results (or keys) too large for the cache: returned, not cached. */
  oversizeSkips: number;
  /** Results the cache cannot store (its `set` threw a TypeError, e.g. a value its codec refuses): returned, not cached. */
  unstorableSkips: number;
  /** Misses that joined a call already running in this process. */
  inflightJoins: number;
  /** Joins of a call running in this process that waited `waitTimeoutMs` and then computed. */
  inflightTimeouts: number;
  /** Misses answered by another process's computation. */
  remoteJoins: number;
  /** Claims taken over from a dead process. */
  remoteTakeovers: number;
  /** Waits for another process that ran out of time. */
  remoteTimeouts: number;
  /** Calls of this function running in this process now (asynchronous functions). */
  inflight: number;
  /** The entries in the cache (0 before a shared cache is opened). */
  size: number;
}

/**
 * What a memoized function has beyond the function itself.
 *
 * @typeParam F The type of the original function.
 */
export interface MemoizeControls<F> {
  /**
   * A snapshot of the counters.
   *
   * @example
   * ```ts
   * import { memoize } from "./memoize.ts";
   *
   * const square = memoize((n: number) => n * n);
   * square(3);
   * square(3);
   * square.stats(); // { hits: 1, misses: 1, calls: 1, ... }
   * ```
   */
  stats(): MemoizeStats;
  /**
   * Removes every cached result (of the whole cache, if you passed an
   * instance). Calls running now are not stored when they finish; later
   * calls compute again.
   *
   * @example
   * ```ts
   * import { memoize } from "./memoize.ts";
   *
   * const now = memoize(() => Date.now());
   * now();
   * now.clear();
   * ```
   */
  clear(): void;
  /**
   * Closes the cache if `memoize` created or opened it (a no-op for an
   * instance that you passed); a later call opens a new one. Closing twice is
   * a no-op.
   *
   * @example
   * ```ts
   * import { memoize } from "./memoize.ts";
   *
   * const f = memoize((n: number) => n + 1);
   * f(1);
   * f.close();
   * ```
   */
  close(): void;
  /** Calls {@linkcode MemoizeControls.close}, for `using`. */
  [Symbol.dispose](): void;
  /** The uncached function. */
  readonly original: F;
}

/**
 * A memoized function: callable like `F`, plus {@linkcode MemoizeControls}.
 *
 * @example
 * ```ts
 * import { memoize, type Memoized } from "./memoize.ts";
 *
 * const parse: Memoized<(text: string) => unknown> = memoize((text: string) => JSON.parse(text));
 * ```
 */
export type Memoized<F extends AnyFunction> = F & MemoizeControls<F>;

const DEFAULT_MAX_KEY_BYTES = 256;
const DEFAULT_MAX_VALUE_BYTES = 4096;

/**
 * Returns a memoized version of `fn`: calls with equal arguments (equal as
 * data, see the key rules in `_key.ts`) call `fn` once and then return the
 * stored result, until it expires or is evicted.
 *
 * `fn` is called with the memoized function's `this`, but `this` is not part
 * of the default key; {@linkcode memoized} adds it for methods.
 *
 * @param fn The function to memoize, synchronous or asynchronous.
 * @param options The cache, its size and time to live, the key function; see {@linkcode MemoizeOptionsOf}.
 * @returns The memoized function, with `stats()`, `clear()`, `close()` and `original`.
 * @throws {TypeError} If `fn` is not a function or an option has the wrong type.
 * @throws {RangeError} If a number option is out of range.
 *
 * Each call throws a TypeError when an argument cannot be encoded in a key
 * (e.g. a function argument; pass a `key` option then).
 *
 * @example Memory cache (the default)
 * ```ts
 * import { memoize } from "./memoize.ts";
 *
 * let calls = 0;
 * const slow = (id: number, opts: { full: boolean }) => ({ id, full: opts.full, n: ++calls });
 * const fast = memoize(slow, { maxSize: 10_000, ttlMs: 30_000 });
 * fast(1, { full: true });
 * fast(1, { full: true }); // a hit: slow is not called again
 * fast.stats().hits; // 1
 * fast.original === slow; // true
 * ```
 *
 * @example Asynchronous function, shared between processes
 * ```ts ignore
 * import { memoize } from "./memoize.ts";
 *
 * const profile = memoize(async (id: number) => (await fetch(`/users/${id}`)).json(), {
 *   cache: "shared",
 *   name: "user-profile",
 *   key: (id) => String(id),
 * });
 * await Promise.all([profile(1), profile(1)]); // one fetch, here or in another process
 * ```
 */
export function memoize<F extends AnyFunction>(
  fn: F,
  options: MemoizeOptions<F> = {},
): Memoized<F> {
  if (typeof fn !== "function") {
    throw new TypeError(`memoize: fn must be a function, got ${describe(fn)}`);
  }
  const engine = new Memoizer(
    fn,
    options as MemoizeOptionsOf<unknown, unknown[]>,
    "memoize",
    false,
  );
  const memoizedFn = function (this: unknown, ...args: unknown[]): unknown {
    return engine.call(this, args, "");
  };
  return withControls(memoizedFn, engine, fn) as Memoized<F>;
}

/**
 * A TC39 (stage 3, TypeScript 5 and later) method decorator that memoizes a
 * method, with the options of {@linkcode memoize}.
 *
 * The cache belongs to the decorated method and is shared by all instances,
 * so `this` is part of the key:
 * - if `this` has a {@linkcode memoizeKey} method, by the value it returns
 *   (instances whose methods return equal values share results, also across
 *   processes);
 * - otherwise, with an in-process cache, by identity (each instance has its
 *   own results; they stay in the cache until evicted or expired, even after
 *   the instance is collected);
 * - otherwise, with a shared cache, the call throws a TypeError: identity
 *   means nothing in another process.
 *
 * The `key` option replaces the argument part of the key only. The derived
 * shared cache name uses the method's name and source. The method gets the
 * memoized function's `stats()`, `clear()`, `close()` and `original`, e.g.
 * `Repo.prototype.find.stats()`. It needs standard decorators: with
 * TypeScript's `experimentalDecorators`, it throws.
 *
 * @param options As for {@linkcode memoize}.
 * @returns The decorator.
 *
 * @example
 * ```ts
 * import { memoized, memoizeKey } from "./memoize.ts";
 *
 * class Repo {
 *   constructor(readonly db: string) {}
 *   [memoizeKey](): string {
 *     return this.db;
 *   }
 *   @memoized({ ttlMs: 1000 })
 *   find(id: number): { id: number } {
 *     return { id };
 *   }
 * }
 * new Repo("main").find(1);
 * new Repo("main").find(1); // a hit: same db, same id
 * ```
 */
export function memoized<This, Args extends unknown[], Return>(
  options: MemoizeOptionsOf<This, Args> = {},
): (
  target: (this: This, ...args: Args) => Return,
  context: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => Return>,
) => (this: This, ...args: Args) => Return {
  // Validate here, where the mistake is, rather than at class definition.
  checkOptions(options as MemoizeOptionsOf<unknown, unknown[]>, "memoized");
  return function (target, context) {
    const given = context as { kind?: unknown; name?: unknown } | null;
    if (typeof given !== "object" || given === null || typeof given.kind !== "string") {
      throw new TypeError(
        "memoized: needs a standard (TC39) decorator context, got a legacy decorator call; turn off experimentalDecorators",
      );
    }
    if (given.kind !== "method") {
      throw new TypeError(
        `memoized: decorates methods only, got a ${given.kind} (${String(given.name)})`,
      );
    }
    const engine = new Memoizer(
      target,
      options as MemoizeOptionsOf<unknown, unknown[]>,
      "memoized",
      true,
    );
    const method = function (this: This, ...args: Args): Return {
      return engine.call(this, args, engine.instancePart(this)) as Return;
    };
    return withControls(method, engine, target);
  };
}

function withControls<T extends AnyFunction>(
  wrapper: T,
  engine: Memoizer,
  original: AnyFunction,
): T {
  Object.defineProperty(wrapper, "name", { value: original.name, configurable: true });
  const controls: Omit<MemoizeControls<AnyFunction>, "original"> = {
    stats: () => engine.stats(),
    clear: () => engine.clear(),
    close: () => engine.close(),
    [Symbol.dispose]: () => engine.close(),
  };
  Object.assign(wrapper, controls);
  Object.defineProperty(wrapper, "original", { value: original, enumerable: true });
  return wrapper;
}

/** Identities of `this` for `@memoized` with in-process caches; ids are never reused. */
const instanceIds = new WeakMap<object, number>();
let lastInstanceId = 0;

/** The state of one memoized function. */
class Memoizer {
  #fn: AnyFunction;
  #who: string;
  #key: ((...args: unknown[]) => string) | undefined;
  #cache: MemoizeCache | null = null;
  #group: FlightGroup | null = null;
  /** Creates the cache, when `memoize` owns it. */
  #create: (() => MemoizeCache) | null = null;
  #crossProcess: boolean;
  #counts: FlightCounts = newFlightCounts();
  /** How calls run; its `async` is learned from the first promise the function returns. */
  readonly #call: FlightCall;

  constructor(
    fn: AnyFunction,
    options: MemoizeOptionsOf<unknown, unknown[]>,
    who: string,
    isMethod: boolean,
  ) {
    this.#fn = fn;
    this.#who = who;
    checkOptions(options, who);
    const { cache = "memory", maxSize, ttlMs } = options;
    this.#key = options.key as ((...args: unknown[]) => string) | undefined;
    let setOptions: { ttlMs: number } | undefined;
    const capacity = maxSize ?? DEFAULT_MEMORY_CACHE_CAPACITY;
    if (cache === "memory") {
      this.#create = () => new MemoryCache({ capacity, ttlMs });
      this.#crossProcess = false;
    } else if (cache === "shared") {
      const name = options.name ?? deriveCacheName(fn, isMethod);
      const shared = options.shared ?? {};
      this.#create = () => openShared(name, { ...shared, capacity, ttlMs });
      this.#crossProcess = true;
    } else {
      this.#cache = cache;
      this.#group = FlightGroup.of(cache);
      setOptions = ttlMs === undefined ? undefined : { ttlMs };
      this.#crossProcess = supportsSingleFlight(cache);
    }
    this.#call = {
      who,
      async: options.async === true || isAsyncFunction(fn),
      setOptions,
      waitTimeoutMs: options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS,
      crossProcess: options.singleFlight ?? true,
      counts: this.#counts,
    };
  }

  /** Handles one call; `prefix` is the `this` part of a method's key. */
  call(thisArg: unknown, args: unknown[], prefix: string): unknown {
    let key = this.#key === undefined ? deriveKey(args) : this.#customKey(thisArg, args);
    if (prefix !== "") key = prefix + key;
    return (this.#group ?? this.#open()).run(key, this.#fn, thisArg, args, this.#call);
  }

  /** The `this` part of a method's key (see {@linkcode memoized}). */
  instancePart(thisArg: unknown): string {
    if ((typeof thisArg !== "object" || thisArg === null) && typeof thisArg !== "function") {
      return encodeKeyPart(thisArg, "this");
    }
    if (typeof (thisArg as { [memoizeKey]?: unknown })[memoizeKey] === "function") {
      return encodeKeyPart(thisArg, "this");
    }
    if (this.#crossProcess) {
      throw new TypeError(
        `memoized: this (${describe(thisArg)}) has no [memoizeKey]() method, ` +
          "which a shared cache needs to tell instances apart across processes",
      );
    }
    let id = instanceIds.get(thisArg);
    if (id === undefined) instanceIds.set(thisArg, id = ++lastInstanceId);
    return "i" + id + ",";
  }

  stats(): MemoizeStats {
    let size: unknown = 0;
    try {
      size = this.#cache?.size;
    } catch {
      // A cache closed by its owner has no size to report; stats never throw.
    }
    const c = this.#counts;
    return {
      hits: c.hits,
      misses: c.misses,
      calls: c.calls,
      errors: c.errors,
      oversizeSkips: c.oversizeSkips,
      unstorableSkips: c.unstorableSkips,
      inflightJoins: c.inflightJoins,
      inflightTimeouts: c.inflightTimeouts,
      remoteJoins: c.remoteJoins,
      remoteTakeovers: c.remoteTakeovers,
      remoteTimeouts: c.remoteTimeouts,
      inflight: c.inflight,
      size: typeof size === "number" ? size : 0,
    };
  }

  clear(): void {
    if (this.#cache === null) this.#open();
    const cache = this.#cache!;
    if (typeof cache.clear !== "function") {
      throw new TypeError(
        `${this.#who}: clear() needs a cache with a clear() method, got ${describe(cache)}`,
      );
    }
    this.#group!.clear();
    cache.clear();
  }

  close(): void {
    if (this.#create === null || this.#cache === null) return;
    const cache = this.#cache as MemoizeCache & { close?(): void };
    // Computations running now finish without storing; their counts stay.
    this.#group!.clear();
    this.#cache = null;
    this.#group = null;
    cache.close?.();
  }

  #open(): FlightGroup {
    const cache = this.#create!();
    this.#cache = cache;
    return this.#group = FlightGroup.of(cache);
  }

  #customKey(thisArg: unknown, args: unknown[]): string {
    const key = this.#key!.apply(thisArg, args);
    if (typeof key !== "string") {
      throw new TypeError(
        `${this.#who}: the key function must return a string, got ${describe(key)}`,
      );
    }
    if (key.charCodeAt(0) === 0) {
      throw new TypeError(
        `${this.#who}: a key must not start with U+0000 (reserved for single-flight claims), got ${
          describe(key)
        }`,
      );
    }
    return key;
  }
}

/** Opens the shared cache for `cache: "shared"`, with memoize's default limits. */
function openShared(
  name: string,
  options: MemoizeSharedOptions & { capacity: number; ttlMs?: number },
): SharedCache {
  return SharedCache.open(name, {
    ...options,
    maxKeyBytes: options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES,
    maxValueBytes: options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES,
  });
}

/** The derived shared cache name: `memo-<function name>-<hash of the source>`. */
function deriveCacheName(fn: AnyFunction, isMethod: boolean): string {
  const base = (fn.name || (isMethod ? "method" : "anonymous")).replace(/[^A-Za-z0-9_-]+/g, "_")
    .slice(0, 40);
  return `memo-${base}-${hash53(Function.prototype.toString.call(fn)).toString(36)}`;
}

/** cyrb53: a fast 53-bit string hash (public domain, bryc). Not cryptographic. */
function hash53(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The names memoize reads; any other is a typo. */
const MEMOIZE_OPTIONS: readonly (keyof MemoizeOptionsOf<unknown, unknown[]>)[] = [
  "cache",
  "name",
  "maxSize",
  "ttlMs",
  "key",
  "async",
  "singleFlight",
  "waitTimeoutMs",
  "shared",
];
const SHARED_OPTIONS: readonly (keyof MemoizeSharedOptions)[] = [
  "dir",
  "maxKeyBytes",
  "maxValueBytes",
  "lockTimeoutMs",
  "codec",
  "immutable",
];

function checkOptions(options: MemoizeOptionsOf<unknown, unknown[]>, who: string): void {
  checkOptionNames(options, MEMOIZE_OPTIONS, `${who} options`);
  const { cache, name, maxSize, ttlMs, key, waitTimeoutMs, shared } = options;
  if (cache !== undefined && cache !== "memory" && cache !== "shared" && !isCacheLike(cache)) {
    throw new TypeError(
      `${who}: cache must be "memory", "shared" or an object with get/set/has/delete, got ${
        describe(cache)
      }`,
    );
  }
  if (name !== undefined && (typeof name !== "string" || name === "")) {
    throw new TypeError(`${who}: name must be a non-empty string, got ${describe(name)}`);
  }
  if (maxSize !== undefined) {
    if (!Number.isSafeInteger(maxSize) || maxSize < 1) {
      throw new RangeError(`${who}: maxSize must be a positive integer, got ${describe(maxSize)}`);
    }
    if (typeof cache === "object") {
      throw new TypeError(
        `${who}: maxSize applies to a cache that memoize creates, not to a cache instance you pass`,
      );
    }
  }
  if (ttlMs !== undefined && (typeof ttlMs !== "number" || !(ttlMs > 0))) {
    throw new RangeError(
      `${who}: ttlMs must be a positive number of milliseconds, got ${describe(ttlMs)}`,
    );
  }
  if (waitTimeoutMs !== undefined && (typeof waitTimeoutMs !== "number" || !(waitTimeoutMs > 0))) {
    throw new RangeError(
      `${who}: waitTimeoutMs must be a positive number of milliseconds, got ${
        describe(waitTimeoutMs)
      }`,
    );
  }
  if (key !== undefined && typeof key !== "function") {
    throw new TypeError(`${who}: key must be a function, got ${describe(key)}`);
  }
  for (const flag of ["async", "singleFlight"] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== "boolean") {
      throw new TypeError(`${who}: ${flag} must be a boolean, got ${describe(options[flag])}`);
    }
  }
  checkOptionNames(shared, SHARED_OPTIONS, `${who} options.shared`);
}

function isCacheLike(value: unknown): value is MemoizeCache {
  if (typeof value !== "object" || value === null) return false;
  const cache = value as Record<string, unknown>;
  return typeof cache.get === "function" && typeof cache.set === "function" &&
    typeof cache.has === "function" &&
    typeof cache.delete === "function";
}
