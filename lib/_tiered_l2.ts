/**
 * TieredCache's L2: entries in Redis, each command bounded by a timeout and
 * guarded by a circuit breaker.
 *
 * ## Layout (prefix `shmc:{<name>}:`; the braces keep every key of a cache
 * in one Redis Cluster slot)
 * - `<prefix>k:<key>`: a hash per entry: `v` the serialized value, `g` its
 *   grace in ms, `n` its tags (JSON array), `k` the tokens it was written
 *   under (comma-separated: the clear token, then one per tag). The key
 *   expires after ttl + grace (`PEXPIRE`), so its `PTTL` minus `g` is the
 *   time it stays fresh, measured by Redis's clock alone: hosts need not
 *   agree on the time.
 * - `<prefix>c`: the clear token; `<prefix>t:<tag>`: a tag's token. Random
 *   64-bit values, created when first needed (no expiry) and replaced by
 *   `clear()` and `deleteByTag(tag)`. An entry whose tokens differ from the current ones
 *   was cleared or tagged away: the read script deletes it and reports a
 *   miss. Tokens are random rather than counters so that a Redis that lost
 *   its data (restart without persistence) never hands out an old token
 *   again, which would revive the entries it invalidated.
 * - `<prefix>l:<key>`: the cross-host single-flight lock (`SET NX PX`).
 *
 * Both scripts run atomically in Redis, so an entry and the tokens it is
 * checked against are read at one instant.
 *
 * ## The breaker
 * `threshold` consecutive failures (errors or timeouts) open it: for
 * `openMs`, commands fail at once without reaching Redis. Then one command
 * is let through (half-open): its success closes the breaker, its failure
 * opens it again.
 *
 * @module
 */

import { CacheError } from "./errors.ts";
import type { TieredTransport } from "./tiered_transport.ts";

/** An entry read from L2. */
export interface L2Entry {
  /** The serialized value. */
  payload: string;
  /** The entry's grace in milliseconds. */
  graceMs: number;
  /** Milliseconds left before the entry expires (fresh for `pttlMs - graceMs`). */
  pttlMs: number;
  /** The entry's tags and, for each, the token it carries (tag, token, tag, token...). */
  tagTokens: string[];
}

/** Options of {@linkcode L2Store}. */
export interface L2StoreOptions {
  prefix: string;
  timeoutMs: number;
  breakerThreshold: number;
  breakerOpenMs: number;
}

// KEYS[1] entry, KEYS[2] clear token; ARGV[1] tag key prefix.
// Returns false (nil) on a miss, else { v, g, pttl, n, k }.
const READ_SCRIPT = `
local h = redis.call('HMGET', KEYS[1], 'v', 'g', 'n', 'k')
if not h[1] then return false end
local names = cjson.decode(h[3])
local i = 0
for token in string.gmatch(h[4], '[^,]+') do
  local current
  if i == 0 then current = redis.call('GET', KEYS[2]) else current = redis.call('GET', ARGV[1] .. names[i]) end
  if current ~= token then
    redis.call('DEL', KEYS[1])
    return false
  end
  i = i + 1
end
return { h[1], h[2], redis.call('PTTL', KEYS[1]), h[3], h[4] }
`;

// KEYS[1] entry, KEYS[2] clear token; ARGV[1] value, ARGV[2] px, ARGV[3] grace,
// ARGV[4] tags (JSON array), ARGV[5] tag key prefix, ARGV[6] a new token.
// Returns the tokens written (comma-separated).
const WRITE_SCRIPT = `
local function token(key)
  local t = redis.call('GET', key)
  if not t then
    t = ARGV[6]
    redis.call('SET', key, t)
  end
  return t
end
local names = cjson.decode(ARGV[4])
local tokens = { token(KEYS[2]) }
for i, name in ipairs(names) do tokens[i + 1] = token(ARGV[5] .. name) end
local k = table.concat(tokens, ',')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'g', ARGV[3], 'n', ARGV[4], 'k', k)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return k
`;

// KEYS[1] lock; ARGV[1] our token. Deletes the lock only if it is still ours.
const UNLOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** 64 random bits in hex. */
export function randomToken(): string {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return words[0].toString(16).padStart(8, "0") + words[1].toString(16).padStart(8, "0");
}

const BREAKER_OPEN = new CacheError("L2Unavailable", "L2 skipped: the circuit breaker is open");

/** L2 operations over a transport, with a timeout on each and a circuit breaker. */
export class L2Store {
  readonly #transport: TieredTransport;
  readonly #prefix: string;
  readonly #clearKey: string;
  readonly #tagPrefix: string;
  readonly #timeoutMs: number;
  readonly #threshold: number;
  readonly #openMs: number;
  #failures = 0;
  /** While `performance.now()` is below this, the breaker is open. */
  #openUntil = 0;
  /** A half-open probe is in flight: other commands still fail fast. */
  #probing = false;
  /** Failed commands (errors and timeouts). */
  errors = 0;
  /** Commands not sent because the breaker was open. */
  skipped = 0;
  /** Times the breaker opened. */
  trips = 0;

  constructor(transport: TieredTransport, options: L2StoreOptions) {
    this.#transport = transport;
    this.#prefix = options.prefix;
    this.#clearKey = `${options.prefix}c`;
    this.#tagPrefix = `${options.prefix}t:`;
    this.#timeoutMs = options.timeoutMs;
    this.#threshold = options.breakerThreshold;
    this.#openMs = options.breakerOpenMs;
  }

  /** True while the breaker keeps commands from Redis. */
  get breakerOpen(): boolean {
    return this.#failures >= this.#threshold;
  }

  /** The channel of host `hostId`'s heartbeats, and of the bus. */
  channel(name: "bus" | `hb:${string}`): string {
    return `${this.#prefix}${name}`;
  }

  /**
   * Sends one command through the breaker, bounded by the timeout. Rejects
   * with `CacheError` `L2Unavailable` (the cause attached) on any failure.
   */
  async send(args: string[], timeoutMs = this.#timeoutMs): Promise<unknown> {
    const probe = this.#failures >= this.#threshold;
    if (probe) {
      if (this.#probing || performance.now() < this.#openUntil) {
        this.skipped++;
        throw BREAKER_OPEN;
      }
      this.#probing = true;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new CacheError("Timeout", `L2 ${args[0]} took over ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      const reply = await Promise.race([this.#transport.send(args), timeout]);
      this.#failures = 0;
      return reply;
    } catch (cause) {
      this.errors++;
      this.#failures++;
      if (probe || this.#failures === this.#threshold) {
        if (!probe) this.trips++;
        this.#openUntil = performance.now() + this.#openMs;
      }
      throw new CacheError("L2Unavailable", `L2 ${args[0]} failed: ${String(cause)}`, { cause });
    } finally {
      if (probe) this.#probing = false;
      clearTimeout(timer);
    }
  }

  /** The live entry under `key`, or null (missing, expired, cleared or tagged away). */
  async get(key: string): Promise<L2Entry | null> {
    const reply = await this.send([
      "EVAL",
      READ_SCRIPT,
      "2",
      this.#entryKey(key),
      this.#clearKey,
      this.#tagPrefix,
    ]);
    if (reply === null || reply === undefined) return null;
    if (!Array.isArray(reply) || reply.length !== 5) {
      throw new CacheError("L2Unavailable", `L2 read of ${key}: unexpected reply`);
    }
    const pttlMs = Number(reply[2]);
    // -1: no expiry (cannot happen for our writes), -2: expired meanwhile.
    if (pttlMs === -2) return null;
    return {
      payload: String(reply[0]),
      graceMs: Number(reply[1]),
      pttlMs: pttlMs < 0 ? Infinity : pttlMs,
      tagTokens: pairTags(String(reply[3]), String(reply[4])),
    };
  }

  /** Writes an entry; returns its tags paired with the tokens it was written under. */
  async set(
    key: string,
    payload: string,
    options: { ttlMs: number; graceMs: number; tags: readonly string[] },
  ): Promise<string[]> {
    const tags = JSON.stringify(options.tags);
    const reply = await this.send([
      "EVAL",
      WRITE_SCRIPT,
      "2",
      this.#entryKey(key),
      this.#clearKey,
      payload,
      String(Math.max(1, Math.ceil(options.ttlMs + options.graceMs))),
      String(options.graceMs),
      tags,
      this.#tagPrefix,
      randomToken(),
    ]);
    return pairTags(tags, String(reply));
  }

  /** Deletes `key`. */
  async delete(key: string): Promise<void> {
    await this.send(["DEL", this.#entryKey(key)]);
  }

  /** Gives `tag` a new token, so every entry written under the old one is gone. */
  async retag(tag: string): Promise<void> {
    await this.send(["SET", this.#tagPrefix + tag, randomToken()]);
  }

  /** Gives the cache a new clear token: every entry written before is gone. */
  async clear(): Promise<void> {
    await this.send(["SET", this.#clearKey, randomToken()]);
  }

  /** Publishes `message` on `channel`. */
  async publish(channel: string, message: string, timeoutMs?: number): Promise<void> {
    await this.send(["PUBLISH", channel, message], timeoutMs);
  }

  /** Takes the cross-host lock on `key` for `ttlMs` if it is free. */
  async tryLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    const reply = await this.send([
      "SET",
      `${this.#prefix}l:${key}`,
      token,
      "NX",
      "PX",
      String(Math.ceil(ttlMs)),
    ]);
    return reply === "OK";
  }

  /** Whether someone holds the cross-host lock on `key`. */
  async locked(key: string): Promise<boolean> {
    return (await this.send(["EXISTS", `${this.#prefix}l:${key}`])) === 1;
  }

  /** Releases the cross-host lock on `key` if `token` still holds it. */
  async unlock(key: string, token: string): Promise<void> {
    await this.send(["EVAL", UNLOCK_SCRIPT, "1", `${this.#prefix}l:${key}`, token]);
  }

  #entryKey(key: string): string {
    return `${this.#prefix}k:${key}`;
  }
}

/** Pairs the tag names (JSON array) with their tokens (the clear token first, dropped). */
function pairTags(namesJson: string, tokens: string): string[] {
  const names = JSON.parse(namesJson) as string[];
  if (names.length === 0) return EMPTY;
  const list = tokens.split(",");
  const out: string[] = [];
  for (let i = 0; i < names.length; i++) out.push(names[i], list[i + 1]);
  return out;
}

const EMPTY: string[] = [];
