/**
 * `TieredCache`: a Redis L2 behind each host's shared-memory L1, kept
 * coherent across hosts by invalidations on a Redis channel (never values).
 *
 * - A read is served from the host's L1 ({@linkcode SharedCache}, shared by
 *   every Deno and Bun process of the host) while the entry is fresh, with
 *   no Redis round trip; else from L2, which then fills L1; else by the
 *   loader of `getOrSet`, whose result goes to L2 and L1.
 * - A write (`set`, `delete`, `deleteByTag`, `clear`) goes to L2, then to
 *   this host's L1, then is published; one listener per host applies other
 *   hosts' invalidations to its L1 (see `_tiered_host.ts` for the election,
 *   the fence against fills racing invalidations, and the epoch that makes
 *   entries filled before a bus gap stale).
 * - Freshness: an entry is fresh for `ttlMs`, then stale for `graceMs`
 *   (served while one background refresh runs, or when L2 or the loader
 *   fails), then gone. Redis measures both (`PTTL`): hosts need not agree on
 *   the time.
 * - Failures: every Redis command is bounded by `l2.timeoutMs` and guarded
 *   by a circuit breaker; with `suppressL2Errors` (default) an L2 failure is
 *   counted, never thrown; no call waits longer than `hardTimeoutMs`.
 *
 * Values travel to Redis as JSON (or through `serializer`); `undefined` is
 * not a value (it means a miss).
 *
 * @module
 */

import { SharedCache, type SharedCacheOptions } from "./cache.ts";
import { CacheError } from "./errors.ts";
import type { CacheLock } from "./guard.ts";
import { type RemoteCounts, SingleFlight } from "./_single_flight.ts";
import { L2Store, randomToken } from "./_tiered_l2.ts";
import { Host, TAG_PREFIX, unref } from "./_tiered_host.ts";
import {
  checkL2Connection,
  type L2Connection,
  openTransport,
  type TieredTransport,
} from "./tiered_transport.ts";

/**
 * How values travel to Redis: JSON by default.
 *
 * @example
 * ```ts ignore
 * const serializer = { stringify: (v: unknown) => JSON.stringify(v), parse: (t: string) => JSON.parse(t) };
 * await TieredCache.open("products", { l2: { url }, serializer });
 * ```
 */
export interface TieredSerializer {
  /** The text stored in Redis for `value`. */
  stringify(value: unknown): string;
  /** The value back from its text. */
  parse(text: string): unknown;
}

/**
 * Options of {@linkcode TieredCache.open}.
 *
 * @example
 * ```ts ignore
 * const options: TieredCacheOptions = {
 *   l1: { capacity: 100_000, maxValueBytes: 16_384 },
 *   l2: { url: "redis://127.0.0.1:6379", timeoutMs: 200 },
 *   ttlMs: 60_000,
 *   graceMs: 600_000,
 * };
 * ```
 */
export interface TieredCacheOptions {
  /** The host's L1 ({@linkcode SharedCache} options; `ttlMs` is TieredCache's). Defaults: capacity 4,096, maxKeyBytes 256, maxValueBytes 8,192 (a region of about 34 MB; size it for real use). */
  l1?: Partial<Omit<SharedCacheOptions, "ttlMs">>;
  /** Where Redis is (`url` under Bun, `client` or `transport`), and how to talk to it. */
  l2: L2Connection & {
    /** Prefix of every Redis key and channel (default `shmc:{<name>}:`). */
    prefix?: string;
    /** Longest wait for one Redis command, in ms (default 1,000, or `hardTimeoutMs / 2` if less; at most `hardTimeoutMs / 2`). */
    timeoutMs?: number;
    /** Consecutive failures that open the circuit breaker (default 3). */
    breakerThreshold?: number;
    /** How long an open breaker keeps commands from Redis, in ms (default 2,000). */
    breakerOpenMs?: number;
  };
  /** How long an entry is fresh, in ms (default 60,000). */
  ttlMs?: number;
  /** How long after that a stale entry may still be served, in ms (default 0). */
  graceMs?: number;
  /** With a stale value at hand, how long `getOrSet` waits for its refresh before returning it, in ms (default 0: at once; at most `hardTimeoutMs`). */
  softTimeoutMs?: number;
  /** The longest any call waits, in ms (default 10,000); past it `getOrSet` throws `CacheError` `Timeout` (the loader goes on and stores its result). */
  hardTimeoutMs?: number;
  /** Count L2 failures instead of throwing them (default true). */
  suppressL2Errors?: boolean;
  /** Single-flight across hosts: a loader runs once per key in the fleet at a time, under a Redis `SET NX PX` lock (default false: once per host). */
  lockAcrossHosts?: boolean;
  /** The listener's heartbeat period, in ms (default 1,000): a partition from Redis is seen within two. */
  heartbeatMs?: number;
  /** How often each instance checks that its host has a live listener, in ms (default 100): the longest takeover delay. */
  electionMs?: number;
  /** How values travel to Redis (default JSON). */
  serializer?: TieredSerializer;
}

/**
 * Per-call options of {@linkcode TieredCache.set} and {@linkcode TieredCache.getOrSet}.
 *
 * @example
 * ```ts ignore
 * await cache.set("p:1", product, { ttlMs: 30_000, graceMs: 300_000, tags: ["product", "shop:7"] });
 * ```
 */
export interface TieredSetOptions {
  /** Fresh for this long, in ms (default: the cache's `ttlMs`). */
  ttlMs?: number;
  /** Then served stale for this long, in ms (default: the cache's `graceMs`). */
  graceMs?: number;
  /** Tags, for {@linkcode TieredCache.deleteByTag}. */
  tags?: readonly string[];
}

/**
 * Counters of {@linkcode TieredCache.stats}, this instance's unless said otherwise.
 *
 * @example
 * ```ts ignore
 * const { l1Hits, l2Hits, misses, busLive } = cache.stats();
 * ```
 */
export interface TieredCacheStats {
  /** Reads answered by a fresh L1 entry (no Redis round trip). */
  l1Hits: number;
  /** Reads answered by L2. */
  l2Hits: number;
  /** Reads that found nothing fresh or servable. */
  misses: number;
  /** Reads answered by a stale entry (within grace). */
  staleServed: number;
  /** Loader calls by `getOrSet` (foreground and background). */
  loads: number;
  /** Background refreshes started. */
  refreshes: number;
  /** Redis commands that failed or timed out. */
  l2Errors: number;
  /** Redis commands not sent because the breaker was open. */
  l2Skipped: number;
  /** Times the circuit breaker opened. */
  breakerTrips: number;
  /** True while the breaker is open. */
  breakerOpen: boolean;
  /** Fills from L2 not written to L1 because an invalidation raced them. */
  fencedFills: number;
  /** Invalidations published for the other hosts. */
  invalidationsPublished: number;
  /** Other hosts' invalidations applied to this host's L1 by this instance (as listener). */
  invalidationsApplied: number;
  /** Bus gaps seen by this instance as listener. */
  busGaps: number;
  /** `getOrSet` misses answered by another process of this host that was loading the same key. */
  hostJoins: number;
  /** `getOrSet` calls that ran past `hardTimeoutMs`. */
  hardTimeouts: number;
  /** True while this instance is its host's listener. */
  listening: boolean;
  /** True while this instance listens and its subscription is proven live by a heartbeat. */
  busLive: boolean;
}

/** What L1 holds per key: value, fresh-until (ms, this host's clock), epoch, tag/token pairs, grace ms. */
type Envelope = [unknown, number, number, string[] | 0, number];

const FRESH = 0;
const STALE = 1;
const UNUSABLE = 2;

const NAME_MAX = 120;
const DEFAULT_L1 = { capacity: 4_096, maxKeyBytes: 256, maxValueBytes: 8_192 };
const MISSING: unique symbol = Symbol("missing");
const REFRESH_PREFIX = "\u0000rf:";
/** Retries of unpublished invalidations: the first after this many ms, doubling to the next. */
const REPUBLISH_FIRST_MS = 50;
const REPUBLISH_MAX_MS = 1_000;
/** Unpublished keys and tags beyond this many are replaced by one L1 clear of every other host. */
const REPUBLISH_MAX_NAMES = 1_000;
const JSON_SERIALIZER: TieredSerializer = { stringify: JSON.stringify, parse: JSON.parse };
const textEncoder = new TextEncoder();

function checkMs(name: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > 1e12) {
    throw new RangeError(
      `${name} must be a number of milliseconds from ${min} to 1e12, got ${String(value)}`,
    );
  }
  return value;
}

function checkKey(key: unknown): string {
  if (typeof key !== "string") throw new TypeError(`key must be a string, got ${typeof key}`);
  if (key.length === 0 || key.charCodeAt(0) === 0) {
    throw new RangeError(
      `key must be a non-empty string not starting with U+0000, got ${JSON.stringify(key)}`,
    );
  }
  return key;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Races `promise` against `ms`: its value, or `onTimeout()` when time runs
 * out first. The timer never outlives the race.
 */
async function within<T, U>(promise: Promise<T>, ms: number, onTimeout: () => U): Promise<T | U> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof MISSING>((resolve) => {
    timer = setTimeout(() => resolve(MISSING), ms);
  });
  try {
    const result = await Promise.race([promise, timeout]);
    return result === MISSING ? onTimeout() : result as T;
  } finally {
    clearTimeout(timer);
  }
}

/** Normalized per-call options. */
interface EntryOptions {
  ttlMs: number;
  graceMs: number;
  tags: readonly string[];
}

/**
 * A two-tier cache: each host's shared-memory L1 in front of a Redis L2
 * shared by the fleet, coherent across hosts.
 *
 * @example
 * ```ts ignore
 * import { TieredCache } from "./mod.ts";
 * await using cache = await TieredCache.open("products", {
 *   l2: { url: "redis://127.0.0.1:6379" },
 *   ttlMs: 60_000,
 *   graceMs: 600_000,
 * });
 * const product = await cache.getOrSet("p:1", () => loadProduct(1), { tags: ["product"] });
 * await cache.deleteByTag("product"); // on every host
 * ```
 */
export class TieredCache implements AsyncDisposable {
  readonly #name: string;
  readonly #l1: SharedCache;
  readonly #l2: L2Store;
  readonly #host: Host;
  readonly #transport: TieredTransport;
  readonly #ownsTransport: boolean;
  readonly #flight: SingleFlight;
  /** What the host-wide single-flight counted. */
  readonly #flightCounts: RemoteCounts = { remoteJoins: 0, remoteTakeovers: 0, remoteTimeouts: 0 };
  readonly #defaults: EntryOptions;
  readonly #softTimeoutMs: number;
  readonly #hardTimeoutMs: number;
  readonly #suppress: boolean;
  readonly #lockAcrossHosts: boolean;
  readonly #serializer: TieredSerializer;
  readonly #maxKeyBytes: number;
  /** In-process single flight of full misses, by key. */
  readonly #loading = new Map<string, Promise<unknown>>();
  /** Background refreshes of this process, by key. */
  readonly #refreshing = new Map<string, Promise<void>>();
  /** Fleet-wide locks this instance holds (`lockAcrossHosts`), by key. */
  readonly #fleetLocks = new Map<string, string>();
  #closed = false;
  #l1Hits = 0;
  #l2Hits = 0;
  #misses = 0;
  #staleServed = 0;
  #loads = 0;
  #refreshes = 0;
  #fenced = 0;
  #published = 0;
  #hardTimeouts = 0;
  /**
   * Invalidations whose publish failed, merged, retried until Redis takes
   * them: the writes they follow may have reached L2 (a publish can fail
   * after its write succeeded), and another host's L1 would otherwise keep
   * the old value as fresh until its TTL.
   */
  #unpublished: { d: Set<string>; t: Set<string>; c: boolean } | undefined;
  #republishTimer: ReturnType<typeof setTimeout> | undefined;
  #republishMs = REPUBLISH_FIRST_MS;

  private constructor(
    name: string,
    l1: SharedCache,
    l2: L2Store,
    host: Host,
    transport: { transport: TieredTransport; owned: boolean },
    options: TieredCacheOptions,
    maxKeyBytes: number,
  ) {
    this.#name = name;
    this.#l1 = l1;
    this.#l2 = l2;
    this.#host = host;
    this.#transport = transport.transport;
    this.#ownsTransport = transport.owned;
    this.#defaults = {
      ttlMs: checkMs("ttlMs", options.ttlMs, 60_000, 1),
      graceMs: checkMs("graceMs", options.graceMs, 0),
      tags: [],
    };
    this.#softTimeoutMs = checkMs("softTimeoutMs", options.softTimeoutMs, 0);
    this.#hardTimeoutMs = checkMs("hardTimeoutMs", options.hardTimeoutMs, 10_000, 1);
    this.#suppress = options.suppressL2Errors ?? true;
    this.#lockAcrossHosts = options.lockAcrossHosts ?? false;
    this.#serializer = options.serializer ?? JSON_SERIALIZER;
    this.#maxKeyBytes = maxKeyBytes;
    this.#flight = new SingleFlight(l1);
  }

  /**
   * Opens the cache `name`: this host's L1 (created when missing) and the
   * connection to Redis. Every process of every host must pass the same
   * name and L2 prefix; the processes of one host, the same L1 options.
   *
   * @param name 1-120 letters, digits, '-', '_' or '.' (the L1 region's name).
   * @param options See {@linkcode TieredCacheOptions}; `l2` is required.
   * @returns The open cache; close it with `close()` or `await using`.
   * @example
   * ```ts ignore
   * await using cache = await TieredCache.open("products", { l2: { url: "redis://127.0.0.1:6379" } });
   * ```
   */
  static async open(name: string, options: TieredCacheOptions): Promise<TieredCache> {
    if (typeof name !== "string" || name.length > NAME_MAX) {
      throw new RangeError(
        `TieredCache name must be a string of at most ${NAME_MAX} characters, got ${
          JSON.stringify(name)
        }`,
      );
    }
    if (
      typeof options !== "object" || options === null || typeof options.l2 !== "object" ||
      options.l2 === null
    ) {
      throw new TypeError("options.l2 is required: { url }, { client } or { transport }");
    }
    const l2Options = options.l2;
    // A write sends two commands (the L2 write, then its invalidation), and
    // no call may wait longer than hardTimeoutMs: each gets at most half.
    const hardTimeoutMs = checkMs("hardTimeoutMs", options.hardTimeoutMs, 10_000, 1);
    const timeoutMs = checkMs(
      "l2.timeoutMs",
      l2Options.timeoutMs,
      Math.min(1_000, hardTimeoutMs / 2),
      1,
    );
    if (timeoutMs > hardTimeoutMs / 2) {
      throw new RangeError(
        `l2.timeoutMs must be at most hardTimeoutMs / 2 = ${
          hardTimeoutMs / 2
        } (a write sends two commands), got ${timeoutMs}`,
      );
    }
    const softTimeoutMs = checkMs("softTimeoutMs", options.softTimeoutMs, 0);
    if (softTimeoutMs > hardTimeoutMs) {
      throw new RangeError(
        `softTimeoutMs must be at most hardTimeoutMs = ${hardTimeoutMs}, got ${softTimeoutMs}`,
      );
    }
    const breakerThreshold = checkMs("l2.breakerThreshold", l2Options.breakerThreshold, 3, 1);
    const breakerOpenMs = checkMs("l2.breakerOpenMs", l2Options.breakerOpenMs, 2_000, 1);
    const heartbeatMs = checkMs("heartbeatMs", options.heartbeatMs, 1_000, 10);
    const electionMs = checkMs("electionMs", options.electionMs, 100, 5);
    const prefix = l2Options.prefix ?? `shmc:{${name}}:`;
    if (typeof prefix !== "string") {
      throw new TypeError(`l2.prefix must be a string, got ${typeof prefix}`);
    }
    const l1Options = { ...DEFAULT_L1, ...options.l1 };
    if ("ttlMs" in l1Options) throw new TypeError("l1.ttlMs is not an option: use ttlMs");
    // Every option is checked before anything is created.
    for (const key of ["ttlMs", "graceMs", "softTimeoutMs", "hardTimeoutMs"] as const) {
      checkMs(key, options[key], 1, key === "graceMs" || key === "softTimeoutMs" ? 0 : 1);
    }
    checkL2Connection(l2Options);
    const l1 = SharedCache.open(name, l1Options);
    let transport: { transport: TieredTransport; owned: boolean } | undefined;
    try {
      transport = await openTransport(l2Options, timeoutMs);
      const l2 = new L2Store(transport.transport, {
        prefix,
        timeoutMs,
        breakerThreshold,
        breakerOpenMs,
      });
      const host = Host.open(l1, l2, transport.transport, {
        name,
        dir: l1Options.dir,
        heartbeatMs,
        electionMs,
        lockTimeoutMs: l1Options.lockTimeoutMs,
      });
      return new TieredCache(name, l1, l2, host, transport, options, l1Options.maxKeyBytes);
    } catch (e) {
      l1.close();
      if (transport?.owned) await transport.transport.close();
      throw e;
    }
  }

  /** The cache's name. */
  get name(): string {
    return this.#name;
  }

  #open(): void {
    if (this.#closed) {
      throw new CacheError("Closed", `TieredCache ${JSON.stringify(this.#name)} is closed`);
    }
  }

  #entryOptions(options: TieredSetOptions | undefined): EntryOptions {
    if (options === undefined) return this.#defaults;
    const tags = options.tags ?? [];
    if (!Array.isArray(tags)) {
      throw new TypeError(`tags must be an array of strings, got ${typeof tags}`);
    }
    for (const tag of tags) this.#checkTag(tag);
    return {
      ttlMs: checkMs("ttlMs", options.ttlMs, this.#defaults.ttlMs, 1),
      graceMs: checkMs("graceMs", options.graceMs, this.#defaults.graceMs),
      tags,
    };
  }

  #checkTag(tag: unknown): string {
    if (typeof tag !== "string" || tag.length === 0) {
      throw new TypeError(`a tag must be a non-empty string, got ${JSON.stringify(tag)}`);
    }
    const bytes = textEncoder.encode(tag).byteLength + 3;
    if (bytes > this.#maxKeyBytes) {
      throw new RangeError(
        `tag ${JSON.stringify(tag.slice(0, 40))} is too long: ${
          bytes - 3
        } bytes, at most maxKeyBytes - 3 = ${this.#maxKeyBytes - 3}`,
      );
    }
    return tag;
  }

  /** FRESH, STALE (servable within grace) or UNUSABLE. */
  #state(env: Envelope, epoch: number): number {
    const tags = env[3];
    if (tags !== 0) {
      for (let i = 0; i < tags.length; i += 2) {
        if (this.#l1.get(TAG_PREFIX + tags[i]) !== tags[i + 1]) return UNUSABLE;
      }
    }
    // Epoch 0: no listener vouches for the host's L1 now (a lapsed lease).
    if (env[2] === epoch && epoch !== 0 && Date.now() < env[1]) return FRESH;
    return env[4] > 0 ? STALE : UNUSABLE;
  }

  /** The L1 envelope of `key` and its state; an unusable one is deleted (so that single-flight never joins it). */
  #readL1(key: string): Envelope | undefined {
    const env = this.#l1.get(key) as Envelope | undefined;
    if (env === undefined) return undefined;
    if (!Array.isArray(env) || env.length !== 5) {
      this.#l1.delete(key);
      return undefined;
    }
    return env;
  }

  /**
   * Reads `key` from L2 and fills L1 behind the fence. `MISSING` on a miss,
   * an `Error` when L2 failed, else the value and whether it is fresh.
   */
  async #fromL2(key: string): Promise<{ value: unknown; fresh: boolean } | typeof MISSING | Error> {
    // The fence: the sequence and the epoch are read before the L2 read.
    const seq0 = this.#host.seq;
    const epoch0 = this.#host.epoch;
    let entry;
    try {
      entry = await this.#l2.get(key);
    } catch (error) {
      return error as Error;
    }
    if (entry === null) return MISSING;
    let value: unknown;
    try {
      value = this.#serializer.parse(entry.payload);
    } catch (error) {
      return error as Error;
    }
    const freshMs = entry.pttlMs - entry.graceMs;
    if (!this.#closed) {
      const env: Envelope = [
        value,
        Date.now() + freshMs,
        epoch0,
        entry.tagTokens.length === 0 ? 0 : entry.tagTokens,
        entry.graceMs,
      ];
      const wrote = this.#host.fill(seq0, (tx) => {
        this.#writeL1(tx, key, env, entry.pttlMs);
        for (let i = 0; i < entry.tagTokens.length; i += 2) {
          tx.set(TAG_PREFIX + entry.tagTokens[i], entry.tagTokens[i + 1], { ttlMs: Infinity });
        }
      });
      if (!wrote) this.#fenced++;
    }
    return { value, fresh: freshMs > 0 };
  }

  /**
   * Writes an envelope, or deletes the key when L1 cannot hold it (an old
   * value must not stay): too large (RangeError), or not storable by the
   * L1's codec (TypeError: a Date, NaN... under JSON, which the serializer
   * may turn into something L2 holds). Throwing here would skip the
   * invalidation of the other hosts after L2 took the value.
   */
  #writeL1(tx: CacheLock, key: string, env: Envelope, ttlMs: number): void {
    if (!(ttlMs > 0)) {
      tx.delete(key);
      return;
    }
    try {
      tx.set(key, env, { ttlMs: Number.isFinite(ttlMs) ? ttlMs : Infinity });
    } catch (error) {
      if (!(error instanceof RangeError) && !(error instanceof TypeError)) throw error;
      tx.delete(key);
    }
  }

  #l2Failed(error: unknown): void {
    if (!this.#suppress) throw error;
  }

  /**
   * The value under `key`: from L1 while fresh (no Redis round trip), else
   * from L2 (which refills L1), else a stale value within grace if L2
   * failed, else `undefined`.
   *
   * @param key A non-empty string not starting with U+0000.
   * @returns The value, or `undefined` on a miss.
   * @example
   * ```ts ignore
   * const product = await cache.get("p:1");
   * ```
   */
  async get(key: string): Promise<unknown> {
    this.#open();
    checkKey(key);
    const env = this.#readL1(key);
    let state = UNUSABLE;
    if (env !== undefined) {
      state = this.#state(env, this.#host.epoch);
      if (state === FRESH) {
        this.#l1Hits++;
        return env[0];
      }
    }
    const read = await this.#fromL2(key);
    if (read === MISSING) {
      this.#misses++;
      return undefined;
    }
    if (read instanceof Error) {
      if (env !== undefined && state === STALE) {
        this.#staleServed++;
        return env[0];
      }
      this.#l2Failed(read);
      this.#misses++;
      return undefined;
    }
    if (read.fresh) this.#l2Hits++;
    else this.#staleServed++;
    return read.value;
  }

  /**
   * The value under `key`, or the loader's, computed once per key on this
   * host at a time (across its processes), or in the whole fleet with
   * `lockAcrossHosts`. A stale value within grace is returned at once while
   * one background refresh runs; if the loader fails or runs past
   * `softTimeoutMs` with a stale value at hand, the stale value is returned.
   * Throws what the loader throws when nothing servable is at hand, and
   * `CacheError` `Timeout` past `hardTimeoutMs`.
   *
   * @param key A non-empty string not starting with U+0000.
   * @param loader Computes the value (the source of truth); its result is stored in L2 and L1. `undefined` is returned, not stored.
   * @param options `ttlMs`, `graceMs` and `tags` of the stored entry.
   * @returns The cached or computed value.
   * @example
   * ```ts ignore
   * const product = await cache.getOrSet("p:1", () => db.product(1), { ttlMs: 30_000, tags: ["product"] });
   * ```
   */
  // deno-lint-ignore require-await
  async getOrSet<T>(
    key: string,
    loader: () => T | Promise<T>,
    options?: TieredSetOptions,
  ): Promise<T> {
    this.#open();
    checkKey(key);
    if (typeof loader !== "function") {
      throw new TypeError(`loader must be a function, got ${typeof loader}`);
    }
    const entry = this.#entryOptions(options);
    const env = this.#readL1(key);
    if (env !== undefined) {
      const state = this.#state(env, this.#host.epoch);
      if (state === FRESH) {
        this.#l1Hits++;
        return env[0] as T;
      }
      if (state === STALE) return this.#serveStale(key, env[0] as T, loader, entry);
      this.#l1.delete(key);
    }
    let pending = this.#loading.get(key) as Promise<T> | undefined;
    if (pending === undefined) {
      pending = this.#load(key, loader, entry);
      this.#loading.set(key, pending);
      const clear = () => {
        if (this.#loading.get(key) === pending) this.#loading.delete(key);
      };
      pending.then(clear, clear);
    }
    return within(pending, this.#hardTimeoutMs, () => {
      this.#hardTimeouts++;
      throw new CacheError(
        "Timeout",
        `getOrSet(${JSON.stringify(key)}) took over hardTimeoutMs ${this.#hardTimeoutMs}`,
      );
    });
  }

  /** Returns a stale value, after at most `softTimeoutMs` of its refresh. */
  async #serveStale<T>(
    key: string,
    stale: T,
    loader: () => T | Promise<T>,
    entry: EntryOptions,
  ): Promise<T> {
    this.#staleServed++;
    const refresh = this.#refresh(key, loader, entry);
    if (this.#softTimeoutMs <= 0 || refresh === undefined) return stale;
    const fresh = await within(refresh, this.#softTimeoutMs, (): typeof MISSING => MISSING);
    if (fresh === MISSING || fresh === undefined) return stale;
    this.#staleServed--;
    return fresh.value as T;
  }

  /**
   * Starts the one background refresh of `key` (per host: a claim in L1;
   * per process: a map), unless one runs. Resolves with the new value, or
   * undefined when it failed.
   */
  #refresh<T>(
    key: string,
    loader: () => T | Promise<T>,
    entry: EntryOptions,
  ): Promise<{ value: unknown } | undefined> | undefined {
    if (this.#refreshing.has(key)) return undefined;
    const claimKey = REFRESH_PREFIX + key;
    const claim = randomToken();
    try {
      if (!this.#l1.add(claimKey, claim, { ttlMs: this.#hardTimeoutMs })) return undefined;
    } catch {
      // No room for the claim (key too long) or a busy lock: refresh anyway.
    }
    this.#refreshes++;
    const run = (async () => {
      try {
        const read = await this.#fromL2(key);
        if (read !== MISSING && !(read instanceof Error) && read.fresh) {
          return { value: read.value };
        }
        this.#loads++;
        const value = await loader();
        await this.#store(key, value, entry);
        return { value };
      } catch {
        return undefined;
      } finally {
        try {
          if (this.#l1.get(claimKey) === claim) this.#l1.delete(claimKey);
        } catch {
          // Closed meanwhile: the claim expires.
        }
      }
    })();
    const done = run.then(() => {});
    this.#refreshing.set(key, done);
    done.then(() => this.#refreshing.delete(key));
    return run;
  }

  /** A full miss in L1: L2, then the loader under single-flight. */
  async #load<T>(key: string, loader: () => T | Promise<T>, entry: EntryOptions): Promise<T> {
    const read = await this.#fromL2(key);
    if (read !== MISSING && !(read instanceof Error)) {
      if (read.fresh) {
        this.#l2Hits++;
        return read.value as T;
      }
      // Stale in L2, within grace: serve it while one refresh runs.
      return this.#serveStale(key, read.value as T, loader, entry);
    }
    if (read instanceof Error) this.#l2Failed(read);
    const acquired = await this.#flight.acquireAsync(key, this.#hardTimeoutMs, this.#flightCounts);
    if (acquired.kind === "value") {
      const env = acquired.value as Envelope;
      if (
        Array.isArray(env) && env.length === 5 && this.#state(env, this.#host.epoch) !== UNUSABLE
      ) {
        this.#l1Hits++;
        return env[0] as T;
      }
    }
    try {
      // The claimant of this host finished without leaving its value in L1
      // (its fill was fenced, or it did not fit): it is likely in L2.
      if (acquired.kind !== "claimed" && !(read instanceof Error)) {
        const again = await this.#fromL2(key);
        if (again !== MISSING && !(again instanceof Error)) {
          this.#l2Hits++;
          return again.value as T;
        }
      }
      if (this.#lockAcrossHosts && !(read instanceof Error)) {
        const remote = await this.#waitForFleet(key);
        if (remote !== MISSING) return remote as T;
      }
      this.#misses++;
      this.#loads++;
      const value = await loader();
      await this.#store(key, value, entry);
      return value;
    } finally {
      if (acquired.kind === "claimed") this.#flight.release(key);
      // The loader threw (or stored nothing): let the fleet's waiters go.
      this.#releaseFleetLock(key);
    }
  }

  /**
   * Takes the fleet-wide lock on `key`, or waits for its holder's value in
   * L2. `MISSING`: load here (lock taken, holder gone without a value, or
   * the wait ran out). The lock is released by `#store`'s caller through
   * its expiry or `#unlock`.
   */
  async #waitForFleet(key: string): Promise<unknown> {
    const token = randomToken();
    try {
      if (await this.#l2.tryLock(key, token, this.#hardTimeoutMs)) {
        this.#fleetLocks.set(key, token);
        return MISSING;
      }
      const deadline = performance.now() + this.#hardTimeoutMs;
      for (let delay = 2; performance.now() < deadline; delay = Math.min(delay * 2, 50)) {
        await sleep(delay);
        const read = await this.#fromL2(key);
        if (read instanceof Error) return MISSING;
        if (read !== MISSING) {
          this.#l2Hits++;
          return read.value;
        }
        if (!(await this.#l2.locked(key))) {
          // Values are stored before the lock is released: read once more.
          const last = await this.#fromL2(key);
          if (last === MISSING || last instanceof Error) return MISSING;
          this.#l2Hits++;
          return last.value;
        }
      }
    } catch {
      // L2 failed: load here.
    }
    return MISSING;
  }

  /**
   * Writes L2, then this host's L1 (bumping the sequence), then publishes.
   * If any change reached this host's L1 between the L2 write and the L1
   * write (another writer's newer value may be among them), L1 drops the
   * key instead of storing a value L2 may no longer hold.
   */
  async #store(key: string, value: unknown, entry: EntryOptions): Promise<void> {
    if (value === undefined) return;
    const payload = this.#serializer.stringify(value);
    // Both read before the L2 write, as a fill reads them before its L2
    // read: a newer write of another host whose invalidation this host
    // lost in a bus gap is only known by the epoch the gap moved, so an
    // epoch read after the L2 write would call this older value fresh.
    const seq0 = this.#host.seq;
    const epoch = this.#host.epoch;
    let tagTokens: string[] | null = null;
    try {
      tagTokens = await this.#l2.set(key, payload, entry);
    } catch (error) {
      this.#l2Failed(error);
    } finally {
      // The value is in L2 (or could not be): the fleet's waiters may go.
      this.#releaseFleetLock(key);
    }
    if (this.#closed) return;
    this.#host.change((tx, raced) => {
      // A tagged entry whose tokens L2 did not give cannot be checked.
      if (raced || (tagTokens === null && entry.tags.length > 0)) {
        tx.delete(key);
        return;
      }
      const tokens = tagTokens ?? [];
      const env: Envelope = [
        value,
        Date.now() + entry.ttlMs,
        epoch,
        tokens.length === 0 ? 0 : tokens,
        entry.graceMs,
      ];
      this.#writeL1(tx, key, env, entry.ttlMs + entry.graceMs);
      for (let i = 0; i < tokens.length; i += 2) {
        tx.set(TAG_PREFIX + tokens[i], tokens[i + 1], { ttlMs: Infinity });
      }
    }, seq0);
    await this.#publish({ d: [key] });
  }

  #releaseFleetLock(key: string): void {
    const token = this.#fleetLocks.get(key);
    if (token === undefined) return;
    this.#fleetLocks.delete(key);
    this.#l2.unlock(key, token).catch(() => {});
  }

  async #publish(message: { d?: string[]; t?: string[]; c?: 1 }): Promise<void> {
    try {
      await this.#host.publish(message);
      this.#published++;
    } catch (error) {
      this.#keepUnpublished(message);
      this.#l2Failed(error);
    }
  }

  /** Queues a message whose publish failed, and schedules its retry. */
  #keepUnpublished(message: { d?: string[]; t?: string[]; c?: 1 }): void {
    if (this.#closed) return;
    const queue = this.#unpublished ??= { d: new Set(), t: new Set(), c: false };
    for (const key of message.d ?? []) queue.d.add(key);
    for (const tag of message.t ?? []) queue.t.add(tag);
    if (message.c === 1 || queue.d.size + queue.t.size > REPUBLISH_MAX_NAMES) {
      // Too many to list: the other hosts drop their whole L1 instead.
      queue.c = true;
      queue.d.clear();
      queue.t.clear();
    }
    if (this.#republishTimer !== undefined) return;
    this.#republishTimer = setTimeout(() => {
      this.#republishTimer = undefined;
      this.#republish().catch(() => {});
    }, this.#republishMs);
    unref(this.#republishTimer);
    this.#republishMs = Math.min(this.#republishMs * 2, REPUBLISH_MAX_MS);
  }

  /** Publishes what `#keepUnpublished` queued, as one message; queues it again if that fails. */
  async #republish(): Promise<void> {
    const queue = this.#unpublished;
    if (queue === undefined) return;
    this.#unpublished = undefined;
    const message = queue.c ? { c: 1 as const } : { d: [...queue.d], t: [...queue.t] };
    try {
      await this.#host.publish(message);
      this.#published++;
      this.#republishMs = REPUBLISH_FIRST_MS;
    } catch {
      this.#keepUnpublished(message);
    }
  }

  /**
   * Stores `value` under `key` in L2 and this host's L1, and invalidates it
   * on the other hosts.
   *
   * @param key A non-empty string not starting with U+0000.
   * @param value Any value the serializer takes (JSON by default), not `undefined`.
   * @param options `ttlMs`, `graceMs` and `tags`.
   * @example
   * ```ts ignore
   * await cache.set("p:1", { name: "Lamp" }, { ttlMs: 30_000, tags: ["product"] });
   * ```
   */
  async set(key: string, value: unknown, options?: TieredSetOptions): Promise<void> {
    this.#open();
    checkKey(key);
    if (value === undefined) {
      throw new TypeError(
        `value for key ${JSON.stringify(key)} is undefined, which TieredCache reads as a miss`,
      );
    }
    await this.#store(key, value, this.#entryOptions(options));
  }

  /**
   * Deletes `key` from L2 and from every host's L1.
   *
   * @param key A non-empty string not starting with U+0000.
   * @example
   * ```ts ignore
   * await cache.delete("p:1");
   * ```
   */
  async delete(key: string): Promise<void> {
    this.#open();
    checkKey(key);
    try {
      await this.#l2.delete(key);
    } catch (error) {
      this.#l2Failed(error);
    }
    this.#host.change((tx) => {
      tx.delete(key);
    });
    await this.#publish({ d: [key] });
  }

  /**
   * Deletes every entry tagged `tag`, in L2 and in every host's L1.
   *
   * @param tag A tag given to `set` or `getOrSet`.
   * @example
   * ```ts ignore
   * await cache.deleteByTag("product");
   * ```
   */
  async deleteByTag(tag: string): Promise<void> {
    this.#open();
    this.#checkTag(tag);
    try {
      await this.#l2.retag(tag);
    } catch (error) {
      this.#l2Failed(error);
    }
    // This host's entries of the tag are unusable until a fill brings the
    // tag's new token from L2 (or, with L2 down, until it is back).
    this.#host.change((tx) => {
      tx.delete(TAG_PREFIX + tag);
    });
    await this.#publish({ t: [tag] });
  }

  /**
   * Deletes every entry, in L2 and in every host's L1.
   *
   * @example
   * ```ts ignore
   * await cache.clear();
   * ```
   */
  async clear(): Promise<void> {
    this.#open();
    try {
      await this.#l2.clear();
    } catch (error) {
      this.#l2Failed(error);
    }
    this.#host.change((tx) => tx.clear());
    await this.#publish({ c: 1 });
  }

  /**
   * This instance's counters (see {@linkcode TieredCacheStats}).
   *
   * @example
   * ```ts ignore
   * const { l1Hits, l2Hits, misses } = cache.stats();
   * ```
   */
  stats(): TieredCacheStats {
    return {
      l1Hits: this.#l1Hits,
      l2Hits: this.#l2Hits,
      misses: this.#misses,
      staleServed: this.#staleServed,
      loads: this.#loads,
      refreshes: this.#refreshes,
      l2Errors: this.#l2.errors,
      l2Skipped: this.#l2.skipped,
      breakerTrips: this.#l2.trips,
      breakerOpen: this.#l2.breakerOpen,
      fencedFills: this.#fenced,
      invalidationsPublished: this.#published,
      invalidationsApplied: this.#host.applied,
      busGaps: this.#host.gaps,
      hostJoins: this.#flightCounts.remoteJoins,
      hardTimeouts: this.#hardTimeouts,
      listening: this.#host.listening,
      busLive: this.#host.live,
    };
  }

  /** True once {@linkcode close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Leaves the listener election (another process of the host takes over),
   * closes the Redis connections it opened and the L1 handle. Idempotent.
   *
   * @example
   * ```ts ignore
   * await cache.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // One last try for invalidations not published yet (bounded by
    // l2.timeoutMs; with Redis down, they are lost with this instance).
    clearTimeout(this.#republishTimer);
    this.#republishTimer = undefined;
    await this.#republish();
    // Background refreshes are not awaited (a loader may never settle):
    // what they do after this point fails on the closed handles, quietly.
    await this.#host.close();
    if (this.#ownsTransport) await this.#transport.close();
    this.#l1.close();
  }

  /** Closes the cache (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
