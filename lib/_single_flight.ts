/**
 * Single-flight across processes: when several processes miss the same key
 * of a shared cache at once, one computes and the others wait for its result.
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

/** One waiter's progress. */
class Wait {
  readonly key: string;
  readonly claimKey: string;
  readonly deadline: number;
  delayMs = 1;
  constructor(key: string, deadline: number) {
    this.key = key;
    this.claimKey = CLAIM_PREFIX + key;
    this.deadline = deadline;
  }
}

/**
 * Runs the protocol of this module's documentation on one cache handle.
 *
 * @example
 * ```ts ignore
 * const flight = new SingleFlight(sharedCache, { timeoutMs: 10_000 });
 * const acquired = flight.acquireSync("key");
 * if (acquired.kind === "value") return acquired.value;
 * try { compute and store } finally { if (acquired.kind === "claimed") flight.release("key"); }
 * ```
 */
export class SingleFlight {
  #cache: SingleFlightCache;
  #token: string;
  /** What this claimant stores in its claims: `<token>/<nonce>`. */
  #claimValue: string;
  #timeoutMs: number;
  #claimOptions: { ttlMs: number };
  /** Waits that ended with another process's value. */
  joins = 0;
  /** Claims taken over from dead claimants. */
  takeovers = 0;
  /** Waits that gave up after `timeoutMs`. */
  timeouts = 0;

  constructor(cache: SingleFlightCache, options: { timeoutMs: number }) {
    this.#cache = cache;
    this.#token = cache.handleToken;
    this.#claimValue = `${this.#token}/${nonce()}`;
    this.#timeoutMs = options.timeoutMs;
    this.#claimOptions = { ttlMs: options.timeoutMs };
  }

  /** Claims `key` or waits for its value, blocking the thread while it waits. */
  acquireSync(key: string): Acquired {
    const wait = new Wait(key, performance.now() + this.#timeoutMs);
    let outcome = this.#begin(wait);
    while (typeof outcome === "number") {
      sleepSync(outcome);
      outcome = this.#poll(wait, true);
    }
    return outcome;
  }

  /** Claims `key` or waits for its value without blocking the thread. */
  async acquireAsync(key: string): Promise<Acquired> {
    const wait = new Wait(key, performance.now() + this.#timeoutMs);
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
    const claim = this.#claim(wait.claimKey, undefined);
    if (claim === "unavailable") return ALONE;
    if (claim === "claimed") return this.#afterClaim(wait);
    return this.#pause(wait);
  }

  /** One round of waiting: the outcome, or the pause before the next round. */
  #poll(wait: Wait, sync: boolean): Acquired | number {
    const cache = this.#cache;
    let value = this.#read(wait.key);
    if (value !== MISSING) return this.#joined(value);
    const holder = cache.get(wait.claimKey);
    if (holder === undefined) {
      // Values are stored before claims are released: read once more.
      value = this.#read(wait.key);
      return value === MISSING ? ALONE : this.#joined(value);
    }
    if (holder === this.#claimValue) {
      if (sync) return ALONE;
    } else if (!this.#isLive(holder)) {
      const taken = this.#takeOver(wait, holder);
      if (taken !== null) return taken;
    }
    if (performance.now() >= wait.deadline) {
      this.timeouts++;
      return ALONE;
    }
    return this.#pause(wait);
  }

  /** Replaces a dead claimant's claim with ours; null if another waiter was faster. */
  #takeOver(wait: Wait, deadHolder: unknown): Acquired | null {
    const claim = this.#claim(wait.claimKey, deadHolder);
    if (claim === "unavailable") return ALONE;
    if (claim === "taken") return null;
    this.takeovers++;
    return this.#afterClaim(wait);
  }

  #afterClaim(wait: Wait): Acquired {
    // Another process may have stored the value and released its claim
    // between our miss and our claim.
    const value = this.#read(wait.key);
    if (value === MISSING) return CLAIMED;
    this.release(wait.key);
    return this.#joined(value);
  }

  /**
   * Writes our claim if the claim entry is absent or holds `expected` (a
   * dead claimant's claim; undefined for a first claim).
   */
  #claim(claimKey: string, expected: unknown): "claimed" | "taken" | "unavailable" {
    const cache = this.#cache;
    try {
      const atomic = expected === undefined && typeof cache.add === "function";
      if (!atomic && typeof cache.lock === "function") {
        return this.#claimLocked(cache.lock(), claimKey, expected);
      }
      if (expected !== undefined) {
        const current = cache.get(claimKey);
        // Only delete the dead claim: a live one may have replaced it since.
        if (current !== undefined && current !== expected) return "taken";
        if (current !== undefined) cache.delete(claimKey);
      }
      if (typeof cache.add === "function") {
        return cache.add(claimKey, this.#claimValue, this.#claimOptions) ? "claimed" : "taken";
      }
      if (cache.get(claimKey) !== undefined) return "taken";
      cache.set(claimKey, this.#claimValue, this.#claimOptions);
      return cache.get(claimKey) === this.#claimValue ? "claimed" : "taken";
    } catch (error) {
      if (error instanceof RangeError || isLockUnavailable(error)) return "unavailable";
      throw error;
    }
  }

  #claimLocked(guard: SingleFlightLock, claimKey: string, expected: unknown): "claimed" | "taken" {
    try {
      const current = guard.get(claimKey);
      if (current !== undefined && current !== expected) return "taken";
      guard.set(claimKey, this.#claimValue, this.#claimOptions);
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

  #joined(value: unknown): Acquired {
    this.joins++;
    return { kind: "value", value };
  }

  /** The next pause: exponential backoff, never past the deadline. */
  #pause(wait: Wait): number {
    const left = wait.deadline - performance.now();
    const ms = Math.max(0, Math.min(wait.delayMs, left));
    wait.delayMs = Math.min(wait.delayMs * 2, POLL_MAX_MS);
    return ms;
  }
}
