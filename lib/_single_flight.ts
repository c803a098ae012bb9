/**
 * Single-flight: when several callers miss the same key at once, one
 * computes and the others wait for its result. The machinery of `getOrSet`
 * (`SharedCache`, `MemoryCache`) and `memoize`.
 *
 * In this process, {@linkcode FlightGroup} (one per cache) joins concurrent
 * misses of a key to the one computation running, each join bounded by
 * `waitTimeoutMs`. An `AsyncLocalStorage` chain records which computations
 * the current call runs inside, so a call that would join a computation it
 * is part of (recursion on its own key, also through other memoized
 * functions and after `await`) fails with {@linkcode RecursiveCallError}
 * instead of waiting for itself. Across processes, {@linkcode SingleFlight}
 * runs the claim protocol below.
 *
 * # Across processes
 * When several processes miss the same key of a shared cache at once, one
 * computes and the others wait for its result.
 *
 * The protocol needs nothing from the cache beyond `get`/`set`/`has`/`delete`
 * and two methods backed by the native library:
 *
 * - `handleToken`: a string naming this open handle of the cache;
 * - `isHandleAlive(token)`: false once the handle's process has died or the
 *   handle was closed. The kernel tracks this (the lead's SharedCache ties
 *   each handle to a lock the kernel releases when the process dies), so it
 *   never reports a live handle dead.
 *
 * and, for atomic claims, one of these when the cache has it:
 *
 * - `add(key, value, { ttlMs })`: insert only if the key is absent,
 *   atomically, returning whether it inserted;
 * - `lock()`: a cross-process critical section (SharedCache's writer lock),
 *   whose guard has `get`, `set` and `release`. A claim is then a
 *   compare-and-set: under the lock, write our claim if the claim entry is
 *   absent (or still holds the dead claimant we are taking over from).
 *
 * ## The claim
 * A process that misses key K claims it by adding the entry
 * `CLAIM_PREFIX + K` (U+0000 "sf:" K) whose value is `<handleToken>/<nonce>`,
 * with a time to live of `timeoutMs`. The nonce is random per claimant
 * (`SingleFlight` instance): the native library reuses the token (slot) of a
 * dead handle for a new one, so the token alone cannot tell this handle's
 * claims from those a dead predecessor in the same slot left behind. Data keys that `memoize` derives never start
 * with U+0000, and `memoize` rejects custom keys that do, so claims and values
 * never share a key.
 *
 * - The claimant reads K again after claiming (another process may have
 *   stored it and released its claim between our miss and our claim), then
 *   computes, stores the value under K, and only then deletes the claim if it
 *   still holds its own token. Storing before releasing is what lets a waiter
 *   that sees no claim conclude there is no value coming.
 * - A waiter polls with exponential backoff (1 ms doubling to
 *   `POLL_MAX_MS`), each round reading K, then the claim:
 *   - K present: it returns that value (a remote join).
 *   - Claim gone: it reads K once more (the claimant may have stored K and
 *     released between the two reads); if K is still absent, the claimant
 *     failed (it threw, or its result was too large to cache) or its claim
 *     expired, and the waiter computes by itself, without claiming.
 *     Failures are not cached, so every waiter retries, as later calls do.
 *   - Claim held by a dead handle (`isHandleAlive` false), by this handle's
 *     token with another nonce (a dead predecessor in this slot), or holding
 *     something that is not a claim: the waiter takes over. It deletes the
 *     claim if it still holds the dead token, claims K itself and computes;
 *     the other waiters now wait for it. A claimant killed mid-computation
 *     thus costs its waiters one poll interval, not the timeout.
 *   - Claim held by this very claimant (token and nonce): a synchronous
 *     waiter computes at once, since nothing else can run in this thread
 *     while it blocks (only a recursive call gets here); an asynchronous one
 *     waits as for any live claimant (a call started before `clear()`).
 *   - `timeoutMs` passed since the waiter began: it computes by itself.
 * - Every wait is bounded by `timeoutMs`, and every claim expires after
 *   `timeoutMs`, so a claim whose release failed delays nobody for longer.
 *
 * ## What can go wrong, and what it costs
 * - With `lock()`, claims and takeovers are atomic. With `add` alone, a
 *   first claim is atomic but a takeover is check, delete, add: two waiters
 *   may both take over. With neither, a claim is `get`, then `set`, then a
 *   read-back, and two processes may both read back their own claim (A gets,
 *   B gets, A sets, A reads, B sets, B reads). Either way the cost is a
 *   duplicate computation, never a wrong value or a hang: a value is only
 *   ever stored by a process that computed it for K.
 * - A claim that cannot be written (the claim key is over `maxKeyBytes`, or
 *   the writer lock is busy past its timeout) means computing alone.
 * - A claim evicted by the cache looks released: the waiters compute.
 * - A claim left by a dead process whose token a live process now holds looks
 *   alive: its waiters wait for `timeoutMs` (the claim expires then too).
 * - A computation longer than `timeoutMs` is duplicated by the waiters; set
 *   the timeout above the expected computation time.
 * - A synchronous waiter blocks its thread (with `Atomics.wait`), as the
 *   computation itself would have.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { describe } from "./_describe.ts";
import { checkOptionNames } from "./_options.ts";

/** The prefix of claim keys; a data key starting with U+0000 is rejected by `memoize`. */
export const CLAIM_PREFIX = "\u0000sf:";

/** The longest pause between two polls of a waiter. */
export const POLL_MAX_MS = 16;

/** The guard of {@linkcode SingleFlightCache.lock}: operations under the lock, and its release. */
export interface SingleFlightLock {
  get(key: string): unknown;
  set(key: string, value: unknown, options?: { ttlMs?: number }): unknown;
  release(): void;
}

/** The shape of a cache that supports single-flight across processes. */
export interface SingleFlightCache {
  get(key: string): unknown;
  set(key: string, value: unknown, options?: { ttlMs?: number }): unknown;
  has(key: string): boolean;
  delete(key: string): unknown;
  /** A string naming this open handle; see {@linkcode SingleFlightCache.isHandleAlive}. */
  readonly handleToken: string;
  /** False once the handle named by `token` was closed or its process died. */
  isHandleAlive(token: string): boolean;
  /** Inserts only if `key` is absent, atomically; returns whether it inserted. */
  add?(key: string, value: unknown, options?: { ttlMs?: number }): boolean;
  /** Takes a lock that excludes every other process's writes until `release()`. */
  lock?(): SingleFlightLock;
}

/** Whether `cache` has what {@linkcode SingleFlight} needs. */
export function supportsSingleFlight(cache: object): cache is SingleFlightCache {
  const candidate = cache as Partial<SingleFlightCache>;
  return typeof candidate.handleToken === "string" && typeof candidate.isHandleAlive === "function";
}

/** The outcome of {@linkcode SingleFlight.prototype.acquire}. */
export type Acquired =
  /** Another process computed the value. */
  | { readonly kind: "value"; readonly value: unknown }
  /** This process holds the claim: compute, store, then `release`. */
  | { readonly kind: "claimed" }
  /** Compute without a claim (failed claimant, timeout, or no room for a claim). */
  | { readonly kind: "alone" };

const CLAIMED: Acquired = { kind: "claimed" };
const ALONE: Acquired = { kind: "alone" };
const MISSING: unique symbol = Symbol("missing");

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread for `ms` milliseconds. */
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
/**
 * Whether `error` says the cache's lock cannot be had now: SharedCache's
 * `CacheError` with code `LockTimeout` (a live process holds it too long) or
 * `LockHeld` (this process holds it, through `cache.lock()`).
 */
function isLockUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "LockTimeout" || code === "LockHeld";
}

/** 64 random bits in hex: tells claimants that share a token apart. */
function nonce(): string {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return words[0].toString(16).padStart(8, "0") + words[1].toString(16).padStart(8, "0");
}

function sleepAsync(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function joined(wait: Wait, value: unknown): Acquired {
  wait.counts.remoteJoins++;
  return { kind: "value", value };
}

/** One waiter's progress. */
class Wait {
  readonly key: string;
  readonly claimKey: string;
  readonly deadline: number;
  readonly claimOptions: { ttlMs: number };
  readonly counts: RemoteCounts;
  delayMs = 1;
  constructor(key: string, timeoutMs: number, counts: RemoteCounts) {
    this.key = key;
    this.claimKey = CLAIM_PREFIX + key;
    this.deadline = performance.now() + timeoutMs;
    this.claimOptions = { ttlMs: timeoutMs };
    this.counts = counts;
  }
}

/** What the cross-process protocol counts, per caller (a memoized function, or a cache's getOrSet). */
export interface RemoteCounts {
  /** Waits that ended with another process's value. */
  remoteJoins: number;
  /** Claims taken over from dead claimants. */
  remoteTakeovers: number;
  /** Waits that gave up after their timeout. */
  remoteTimeouts: number;
}

/**
 * Runs the protocol of this module's documentation on one cache handle.
 *
 * @example
 * ```ts ignore
 * const flight = new SingleFlight(sharedCache);
 * const acquired = flight.acquireSync("key", 10_000, counts);
 * if (acquired.kind === "value") return acquired.value;
 * try { compute and store } finally { if (acquired.kind === "claimed") flight.release("key"); }
 * ```
 */
export class SingleFlight {
  #cache: SingleFlightCache;
  #token: string;
  /** What this claimant stores in its claims: `<token>/<nonce>`. */
  #claimValue: string;

  constructor(cache: SingleFlightCache) {
    this.#cache = cache;
    this.#token = cache.handleToken;
    this.#claimValue = `${this.#token}/${nonce()}`;
  }

  /**
   * Claims `key` or waits for its value, blocking the thread while it
   * waits; the wait and the claim last at most `timeoutMs`.
   */
  acquireSync(key: string, timeoutMs: number, counts: RemoteCounts): Acquired {
    const wait = new Wait(key, timeoutMs, counts);
    let outcome = this.#begin(wait);
    while (typeof outcome === "number") {
      sleepSync(outcome);
      outcome = this.#poll(wait, true);
    }
    return outcome;
  }

  /** Claims `key` or waits for its value without blocking the thread. */
  async acquireAsync(key: string, timeoutMs: number, counts: RemoteCounts): Promise<Acquired> {
    const wait = new Wait(key, timeoutMs, counts);
    let outcome = this.#begin(wait);
    while (typeof outcome === "number") {
      await sleepAsync(outcome);
      outcome = this.#poll(wait, false);
    }
    return outcome;
  }

  /**
   * Deletes the claim on `key` if this handle still holds it. Best effort: a
   * claim that cannot be deleted expires after `timeoutMs`, so an error here
   * is not worth failing a call that has its value.
   */
  release(key: string): void {
    const claimKey = CLAIM_PREFIX + key;
    try {
      if (this.#cache.get(claimKey) === this.#claimValue) this.#cache.delete(claimKey);
    } catch {
      // The claim expires by itself; see above.
    }
  }

  /** Tries to claim; returns the outcome, or the pause before the first poll. */
  #begin(wait: Wait): Acquired | number {
    const claim = this.#claim(wait, undefined);
    if (claim === "unavailable") return ALONE;
    if (claim === "claimed") return this.#afterClaim(wait);
    return this.#pause(wait);
  }

  /** One round of waiting: the outcome, or the pause before the next round. */
  #poll(wait: Wait, sync: boolean): Acquired | number {
    const cache = this.#cache;
    let value = this.#read(wait.key);
    if (value !== MISSING) return joined(wait, value);
    const holder = cache.get(wait.claimKey);
    if (holder === undefined) {
      // Values are stored before claims are released: read once more.
      value = this.#read(wait.key);
      return value === MISSING ? ALONE : joined(wait, value);
    }
    if (holder === this.#claimValue) {
      if (sync) return ALONE;
    } else if (!this.#isLive(holder)) {
      const taken = this.#takeOver(wait, holder);
      if (taken !== null) return taken;
    }
    if (performance.now() >= wait.deadline) {
      wait.counts.remoteTimeouts++;
      return ALONE;
    }
    return this.#pause(wait);
  }

  /** Replaces a dead claimant's claim with ours; null if another waiter was faster. */
  #takeOver(wait: Wait, deadHolder: unknown): Acquired | null {
    const claim = this.#claim(wait, deadHolder);
    if (claim === "unavailable") return ALONE;
    if (claim === "taken") return null;
    wait.counts.remoteTakeovers++;
    return this.#afterClaim(wait);
  }

  #afterClaim(wait: Wait): Acquired {
    // Another process may have stored the value and released its claim
    // between our miss and our claim.
    const value = this.#read(wait.key);
    if (value === MISSING) return CLAIMED;
    this.release(wait.key);
    return joined(wait, value);
  }

  /**
   * Writes our claim if the claim entry is absent or holds `expected` (a
   * dead claimant's claim; undefined for a first claim).
   */
  #claim(wait: Wait, expected: unknown): "claimed" | "taken" | "unavailable" {
    const cache = this.#cache;
    const claimKey = wait.claimKey;
    try {
      const atomic = expected === undefined && typeof cache.add === "function";
      if (!atomic && typeof cache.lock === "function") {
        return this.#claimLocked(cache.lock(), wait, expected);
      }
      if (expected !== undefined) {
        const current = cache.get(claimKey);
        // Only delete the dead claim: a live one may have replaced it since.
        if (current !== undefined && current !== expected) return "taken";
        if (current !== undefined) cache.delete(claimKey);
      }
      if (typeof cache.add === "function") {
        return cache.add(claimKey, this.#claimValue, wait.claimOptions) ? "claimed" : "taken";
      }
      if (cache.get(claimKey) !== undefined) return "taken";
      cache.set(claimKey, this.#claimValue, wait.claimOptions);
      return cache.get(claimKey) === this.#claimValue ? "claimed" : "taken";
    } catch (error) {
      if (error instanceof RangeError || isLockUnavailable(error)) return "unavailable";
      throw error;
    }
  }

  #claimLocked(guard: SingleFlightLock, wait: Wait, expected: unknown): "claimed" | "taken" {
    try {
      const current = guard.get(wait.claimKey);
      if (current !== undefined && current !== expected) return "taken";
      guard.set(wait.claimKey, this.#claimValue, wait.claimOptions);
      return "claimed";
    } finally {
      guard.release();
    }
  }

  /** Whether the claim `holder` (another claimant's) belongs to a live handle. */
  #isLive(holder: unknown): boolean {
    if (typeof holder !== "string") return false;
    const slash = holder.lastIndexOf("/");
    if (slash <= 0) return false;
    const token = holder.slice(0, slash);
    // Our token with another nonce: a dead handle that had our slot before.
    if (token === this.#token) return false;
    try {
      return this.#cache.isHandleAlive(token);
    } catch {
      // Not a token this cache knows: no live claimant stands behind it.
      return false;
    }
  }

  #read(key: string): unknown {
    const value = this.#cache.get(key);
    if (value !== undefined) return value;
    return this.#cache.has(key) ? undefined : MISSING;
  }

  /** The next pause: exponential backoff, never past the deadline. */
  #pause(wait: Wait): number {
    const left = wait.deadline - performance.now();
    const ms = Math.max(0, Math.min(wait.delayMs, left));
    wait.delayMs = Math.min(wait.delayMs * 2, POLL_MAX_MS);
    return ms;
  }
}

// ---------------------------------------------------------------- in process

/**
 * The counters of one caller of {@linkcode FlightGroup.run}: a memoized
 * function, or a cache's `getOrSet`.
 */
export interface FlightCounts extends RemoteCounts {
  /** Calls answered from the cache. */
  hits: number;
  /** Calls that found no value (they joined a computation or computed). */
  misses: number;
  /** Calls of the function. */
  calls: number;
  /** Calls of the function that threw or rejected. */
  errors: number;
  /** Results (or keys) too large for the cache: returned, not stored. */
  oversizeSkips: number;
  /** Results the cache's codec cannot store (its `set` threw a TypeError): returned, not stored. */
  unstorableSkips: number;
  /** Misses that joined a computation running in this process. */
  inflightJoins: number;
  /** Joins of a computation in this process that gave up after `waitTimeoutMs` and computed. */
  inflightTimeouts: number;
  /** Computations of this caller running now. */
  inflight: number;
}

/** Fresh zeroed {@linkcode FlightCounts}. */
export function newFlightCounts(): FlightCounts {
  return {
    hits: 0,
    misses: 0,
    calls: 0,
    errors: 0,
    oversizeSkips: 0,
    unstorableSkips: 0,
    inflightJoins: 0,
    inflightTimeouts: 0,
    inflight: 0,
    remoteJoins: 0,
    remoteTakeovers: 0,
    remoteTimeouts: 0,
  };
}

/** How one call of {@linkcode FlightGroup.run} behaves; callers keep one per configuration. */
export interface FlightCall {
  /** The caller's name, in messages (`memoize`, `getOrSet`). */
  readonly who: string;
  /**
   * Whether a hit or a join returns a promise (the function is
   * asynchronous). Learned: set when the function returns a promise.
   */
  async: boolean;
  /** The options of each store, or undefined for the cache's defaults. */
  readonly setOptions: { ttlMs: number } | undefined;
  /** The bound of every wait for a computation, in this process or another. */
  readonly waitTimeoutMs: number;
  /** Whether to wait for other processes' computations (when the cache can). */
  readonly crossProcess: boolean;
  /** The counters to bump. */
  readonly counts: FlightCounts;
}

/** The cache operations {@linkcode FlightGroup} uses. */
export interface FlightCache {
  get(key: string): unknown;
  has(key: string): boolean;
  set(key: string, value: unknown, options?: { ttlMs?: number }): unknown;
  delete(key: string): unknown;
}

/**
 * A call that would wait for a computation it is itself part of: the
 * function, directly or through other memoized functions or `getOrSet`
 * calls, asked for the key it is computing. Waiting would never end, so the
 * call fails at once with this error (never cached).
 *
 * "Part of" follows the asynchronous context (`AsyncLocalStorage`): a call
 * for the same key made from work the function started, even work it does
 * not await (a timer, a detached promise), counts while the computation
 * runs; once it has finished, such a call computes again as any other.
 *
 * @example
 * ```ts
 * import { MemoryCache, RecursiveCallError } from "../mod.ts";
 *
 * const cache = new MemoryCache();
 * const load = (): number => cache.getOrSet("k", load);
 * try {
 *   load();
 * } catch (e) {
 *   e instanceof RecursiveCallError; // true: "k" asked for itself
 * }
 * ```
 */
export class RecursiveCallError extends Error {
  /** The key computed and asked for again. */
  readonly key: string;
  /** The name of the function computing it (`anonymous` when it has none). */
  readonly functionName: string;

  /**
   * Creates the error for `functionName` asking for `key` while computing it.
   *
   * @param who The API that detected it, in the message (`getOrSet`, `memoize`).
   * @param functionName The computing function's name.
   * @param key The key.
   *
   * @example
   * ```ts
   * import { RecursiveCallError } from "../mod.ts";
   *
   * new RecursiveCallError("getOrSet", "load", "user:1").message;
   * ```
   */
  constructor(who: string, functionName: string, key: string) {
    super(
      `${who}: ${functionName} asked for key ${
        JSON.stringify(key.length > 80 ? key.slice(0, 80) + "..." : key)
      } while computing it (directly or through other memoized functions): ` +
        "waiting for itself would never end",
    );
    this.name = "RecursiveCallError";
    this.key = key;
    this.functionName = functionName;
  }
}

/** One computation running in this process, and a link of the call chain that runs it. */
class Running {
  readonly group: FlightGroup;
  readonly key: string;
  readonly functionName: string;
  /** The computation that called this one (through the function), if any. */
  readonly parent: Running | undefined;
  /** The settled result, for joiners; null while the computation is synchronous. */
  promise: Promise<unknown> | null = null;
  done = false;
  constructor(group: FlightGroup, key: string, functionName: string, parent: Running | undefined) {
    this.group = group;
    this.key = key;
    this.functionName = functionName;
    this.parent = parent;
  }
}

/**
 * The computations the current call runs inside: the store is the
 * innermost, and `parent` links lead outwards. `AsyncLocalStorage` carries
 * it across `await`, timers and promise callbacks, in Deno and in Bun.
 */
const callChain = new AsyncLocalStorage<Running>();

/** The unfinished computation of `key` in `group` that the current call runs inside, if any. */
function enclosing(group: FlightGroup, key: string): Running | undefined {
  // Bound: the chain is as long as the nesting of computations, which the
  // stack (synchronous) or the program (asynchronous) bounds.
  for (let r = callChain.getStore(); r !== undefined; r = r.parent) {
    if (r.group === group && r.key === key && !r.done) return r;
  }
  return undefined;
}

/** The longest delay timers take: a longer one fires at once in every runtime. */
const TIMER_MS_MAX = 2 ** 31 - 1;
const MISS: unique symbol = Symbol("miss");
const KEY_TOO_LARGE: unique symbol = Symbol("key too large");
const AsyncFunction = (async () => {}).constructor;

/** Whether `fn` is declared `async` (its calls always return promises). */
export function isAsyncFunction(fn: unknown): boolean {
  return fn instanceof AsyncFunction;
}

/** Whether `value` is a promise or a thenable. */
export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return value instanceof Promise ||
    (typeof value === "object" && value !== null &&
      typeof (value as { then?: unknown }).then === "function");
}

/** The groups of the caches that have one, so that every caller of one cache shares it. */
const groups = new WeakMap<object, FlightGroup>();

/**
 * Get-or-compute with single-flight over one cache: the machinery of
 * `getOrSet` (`SharedCache`, `MemoryCache`) and `memoize`.
 *
 * - A hit returns the stored value (a resolved promise of it for an
 *   asynchronous caller).
 * - A miss while another call in this process computes the key joins it
 *   (an asynchronous computation; a synchronous one can only be running
 *   around this very call), for at most `waitTimeoutMs`: then it computes
 *   by itself.
 * - A miss with a cache shared between processes first claims the key or
 *   waits for the process that did ({@linkcode SingleFlight}).
 * - A call that the computation of its own key made, directly or through
 *   other computations of any group, fails with
 *   {@linkcode RecursiveCallError} instead of waiting for itself.
 * - A result `set` refuses (RangeError: too large; TypeError: not storable
 *   by the codec) is returned to the caller and to every joiner, counted,
 *   and not stored. A failure is never stored: every joiner gets it and the
 *   next call computes again.
 * - `clear()` makes the computations running now not store their results.
 */
export class FlightGroup {
  readonly #cache: FlightCache;
  readonly #flight: SingleFlight | null;
  readonly #inflight = new Map<string, Running>();
  /** Bumped by `clear()`, so that computations started before it do not store. */
  #generation = 0;

  private constructor(cache: FlightCache) {
    this.#cache = cache;
    this.#flight = supportsSingleFlight(cache) ? new SingleFlight(cache) : null;
  }

  /** The group of `cache`, created at the first use; every caller of one cache gets the same. */
  static of(cache: FlightCache): FlightGroup {
    let group = groups.get(cache);
    if (group === undefined) groups.set(cache, group = new FlightGroup(cache));
    return group;
  }

  /** The computations of this group running now. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /** Makes the computations running now not store their results, and not be joined. */
  clear(): void {
    this.#generation++;
    this.#inflight.clear();
  }

  /**
   * The value under `key`, or `fn.apply(thisArg, args)` computed once for
   * all concurrent callers and stored; see the class documentation.
   */
  run(
    key: string,
    fn: (...args: unknown[]) => unknown,
    thisArg: unknown,
    args: unknown[],
    call: FlightCall,
  ): unknown {
    const value = this.#lookup(key);
    if (value === MISS) return this.#miss(key, fn, thisArg, args, call);
    if (value === KEY_TOO_LARGE) {
      call.counts.oversizeSkips++;
      return this.#invoke(fn, thisArg, args, call);
    }
    call.counts.hits++;
    return call.async ? Promise.resolve(value) : value;
  }

  /** The value under `key`, `MISS`, or `KEY_TOO_LARGE` if the cache refuses the key. */
  #lookup(key: string): unknown {
    try {
      const value = this.#cache.get(key);
      if (value !== undefined || this.#cache.has(key)) return value;
      return MISS;
    } catch (error) {
      if (error instanceof RangeError) return KEY_TOO_LARGE;
      throw error;
    }
  }

  #miss(
    key: string,
    fn: (...args: unknown[]) => unknown,
    thisArg: unknown,
    args: unknown[],
    call: FlightCall,
  ): unknown {
    call.counts.misses++;
    const self = enclosing(this, key);
    if (self !== undefined) {
      const error = new RecursiveCallError(call.who, self.functionName, key);
      return call.async ? Promise.reject(error) : fail(error);
    }
    const running = this.#inflight.get(key);
    // Only an asynchronous computation can be running here and not around
    // this call (a synchronous one would be on the stack, so enclosing).
    const asyncRunning = running !== undefined && running.promise !== null;
    if (call.async) {
      if (!asyncRunning) return this.#computeAsync(key, fn, thisArg, args, call);
      call.counts.inflightJoins++;
      return this.#join(running, key, fn, thisArg, args, call);
    }
    // A synchronous caller cannot wait for a promise: it computes by
    // itself, leaving the running computation the one others join.
    return this.#computeSync(key, fn, thisArg, args, call, !asyncRunning);
  }

  /** Waits for `running`, at most `waitTimeoutMs`; then computes by itself. */
  #join(
    running: Running,
    key: string,
    fn: (...args: unknown[]) => unknown,
    thisArg: unknown,
    args: unknown[],
    call: FlightCall,
  ): Promise<unknown> {
    const result = running.promise!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        call.counts.inflightTimeouts++;
        // The late computation stays the one others join; ours runs under a
        // chain link of its own, so a recursion in it is still caught.
        const own = new Running(this, key, functionName(fn), callChain.getStore());
        call.counts.inflight++;
        try {
          resolve(this.#settle(own, this.#apply(own, fn, thisArg, args, call), key, call));
        } catch (error) {
          this.#end(own, call, null);
          reject(error);
        }
      }, Math.min(call.waitTimeoutMs, TIMER_MS_MAX));
      result.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  /** A miss of a function that is, or may be, synchronous; `joinable`: others may join it. */
  #computeSync(
    key: string,
    fn: (...args: unknown[]) => unknown,
    thisArg: unknown,
    args: unknown[],
    call: FlightCall,
    joinable: boolean,
  ): unknown {
    let claimed = false;
    if (call.crossProcess && this.#flight !== null) {
      const acquired = this.#flight.acquireSync(key, call.waitTimeoutMs, call.counts);
      if (acquired.kind === "value") return acquired.value;
      claimed = acquired.kind === "claimed";
    }
    const generation = this.#generation;
    const running = this.#begin(key, fn, call, joinable);
    let result: unknown;
    try {
      result = this.#apply(running, fn, thisArg, args, call);
    } catch (error) {
      this.#end(running, call, claimed ? key : null);
      throw error;
    }
    if (isPromiseLike(result)) {
      // A function not declared async returned a promise: from here on it
      // is an asynchronous computation that others may join, and the
      // caller's hits are promises too.
      call.async = true;
      return running.promise = this.#settle(running, result, key, call, generation, claimed);
    }
    try {
      this.#store(key, result, call, generation);
    } finally {
      this.#end(running, call, claimed ? key : null);
    }
    return result;
  }

  /** A miss of an asynchronous function: wait for another process or compute. */
  #computeAsync(
    key: string,
    fn: (...args: unknown[]) => unknown,
    thisArg: unknown,
    args: unknown[],
    call: FlightCall,
  ): Promise<unknown> {
    const generation = this.#generation;
    const running = this.#begin(key, fn, call);
    const flight = call.crossProcess ? this.#flight : null;
    const work = async (): Promise<unknown> => {
      let claimed = false;
      if (flight !== null) {
        let acquired: Acquired;
        try {
          acquired = await flight.acquireAsync(key, call.waitTimeoutMs, call.counts);
        } catch (error) {
          this.#end(running, call, null);
          throw error;
        }
        if (acquired.kind === "value") {
          this.#end(running, call, null);
          return acquired.value;
        }
        claimed = acquired.kind === "claimed";
      }
      let result: unknown;
      try {
        result = this.#apply(running, fn, thisArg, args, call);
      } catch (error) {
        this.#end(running, call, claimed ? key : null);
        throw error;
      }
      return this.#settle(running, result, key, call, generation, claimed);
    };
    return running.promise = work();
  }

  /** Starts a computation of `key`; if `joinable`, registered so that concurrent misses join it. */
  #begin(
    key: string,
    fn: (...args: unknown[]) => unknown,
    call: FlightCall,
    joinable = true,
  ): Running {
    const running = new Running(this, key, functionName(fn), callChain.getStore());
    if (joinable) this.#inflight.set(key, running);
    call.counts.inflight++;
    return running;
  }

  /** Ends a computation: no longer joinable, its claim (if `claimKey`) released. */
  #end(running: Running, call: FlightCall, claimKey: string | null): void {
    if (running.done) return;
    running.done = true;
    call.counts.inflight--;
    if (this.#inflight.get(running.key) === running) this.#inflight.delete(running.key);
    if (claimKey !== null) this.#flight!.release(claimKey);
  }

  /** Calls the function inside the chain link of `running`, counting the call and a throw. */
  #apply(
    running: Running,
    fn: (...args: unknown[]) => unknown,
    thisArg: unknown,
    args: unknown[],
    call: FlightCall,
  ): unknown {
    call.counts.calls++;
    try {
      return callChain.run(running, () => fn.apply(thisArg, args));
    } catch (error) {
      call.counts.errors++;
      throw error;
    }
  }

  /** Awaits a computation's result, stores it, ends the computation. */
  async #settle(
    running: Running,
    result: unknown,
    key: string,
    call: FlightCall,
    generation = this.#generation,
    claimed = false,
  ): Promise<unknown> {
    try {
      let value: unknown;
      try {
        value = await result;
      } catch (error) {
        call.counts.errors++;
        throw error;
      }
      this.#store(key, value, call, generation);
      return value;
    } finally {
      this.#end(running, call, claimed ? key : null);
    }
  }

  /** Stores a result unless `clear()` ran since it started; a refusal is counted, not thrown. */
  #store(key: string, value: unknown, call: FlightCall, generation: number): void {
    if (generation !== this.#generation) return;
    try {
      this.#cache.set(key, value, call.setOptions);
    } catch (error) {
      if (error instanceof RangeError) call.counts.oversizeSkips++;
      else if (error instanceof TypeError) call.counts.unstorableSkips++;
      else throw error;
    }
  }

  /** Calls the function without the cache (for keys the cache refuses). */
  #invoke(
    fn: (...args: unknown[]) => unknown,
    thisArg: unknown,
    args: unknown[],
    call: FlightCall,
  ): unknown {
    call.counts.calls++;
    let result: unknown;
    try {
      result = fn.apply(thisArg, args);
    } catch (error) {
      call.counts.errors++;
      throw error;
    }
    if (!isPromiseLike(result)) return result;
    call.async = true;
    return Promise.resolve(result).catch((error) => {
      call.counts.errors++;
      throw error;
    });
  }
}

function fail(error: Error): never {
  throw error;
}

function functionName(fn: (...args: unknown[]) => unknown): string {
  return fn.name === "" ? "an anonymous function" : fn.name;
}

// ---------------------------------------------------------------- getOrSet

/**
 * Options of `getOrSet` on `SharedCache` and `MemoryCache`.
 *
 * @example
 * ```ts
 * import { type GetOrSetOptions, MemoryCache } from "../mod.ts";
 *
 * const options: GetOrSetOptions = { ttlMs: 60_000, waitTimeoutMs: 2_000 };
 * new MemoryCache().getOrSet("k", () => 1, options); // 1
 * ```
 */
export interface GetOrSetOptions {
  /** The time to live of the stored result in milliseconds (`Infinity`: never expires). Default: the cache's. */
  ttlMs?: number;
  /**
   * The longest wait for a computation of the same key already running, in
   * this process or (`SharedCache`) in another, in milliseconds; then this
   * call computes by itself. Also the lifetime of a cross-process claim.
   * Default: 10 000.
   */
  waitTimeoutMs?: number;
}

/** The default of {@linkcode GetOrSetOptions.waitTimeoutMs} and memoize's `waitTimeoutMs`. */
export const DEFAULT_WAIT_TIMEOUT_MS = 10_000;

const GET_OR_SET_OPTIONS = ["ttlMs", "waitTimeoutMs"] as const;

/**
 * `cache.getOrSet(key, fn, options)` for a cache whose counters are
 * `counts`: checks the arguments, then runs {@linkcode FlightGroup.run}.
 */
export function getOrSetOn(
  cache: FlightCache,
  key: unknown,
  fn: unknown,
  options: GetOrSetOptions | undefined,
  counts: FlightCounts,
): unknown {
  if (typeof key !== "string") {
    throw new TypeError(`getOrSet: key must be a string, got ${describe(key)}`);
  }
  if (key.startsWith(CLAIM_PREFIX)) {
    throw new TypeError(
      `getOrSet: a key must not start with "\\u0000sf:" (reserved for single-flight claims), got ${
        describe(key)
      }`,
    );
  }
  if (typeof fn !== "function") {
    throw new TypeError(`getOrSet: fn must be a function, got ${describe(fn)}`);
  }
  let setOptions: { ttlMs: number } | undefined;
  let waitTimeoutMs = DEFAULT_WAIT_TIMEOUT_MS;
  checkOptionNames(options, GET_OR_SET_OPTIONS, "getOrSet options (the third argument)");
  if (options !== undefined) {
    const { ttlMs } = options;
    if (ttlMs !== undefined) {
      if (typeof ttlMs !== "number" || !(ttlMs > 0)) {
        throw new RangeError(
          `getOrSet: ttlMs must be a positive number of milliseconds or Infinity, got ${
            describe(ttlMs)
          }`,
        );
      }
      setOptions = { ttlMs };
    }
    if (options.waitTimeoutMs !== undefined) {
      waitTimeoutMs = options.waitTimeoutMs;
      if (
        typeof waitTimeoutMs !== "number" || !(waitTimeoutMs > 0) || waitTimeoutMs > 2 ** 31 - 1
      ) {
        throw new RangeError(
          `getOrSet: waitTimeoutMs must be a positive number of milliseconds up to 2147483647, got ${
            describe(waitTimeoutMs)
          }`,
        );
      }
    }
  }
  const call: FlightCall = {
    who: "getOrSet",
    async: isAsyncFunction(fn),
    setOptions,
    waitTimeoutMs,
    crossProcess: true,
    counts,
  };
  return FlightGroup.of(cache).run(key, fn as (...args: unknown[]) => unknown, undefined, [], call);
}

/** Makes the computations running on `cache` not store their results (its `clear()`). */
export function clearFlights(cache: object): void {
  groups.get(cache)?.clear();
}
