/**
 * The host side of TieredCache's coherence: what every process of one host
 * (one L1 directory) shares about the bus, kept in a small shared region of
 * its own (`<name>.tiered`, beside the L1), and the one listener that applies
 * other hosts' invalidations to the host's L1.
 *
 * ## Shared words (entries of the meta region, never evicted: it holds four)
 * - `s`, the invalidation sequence: bumped, under the L1 writer lock, before
 *   every change this host applies to L1 (a local write or delete, or a
 *   remote invalidation).
 * - `e`, the epoch: bumped whenever the bus may have lost messages (the
 *   listener's subscription dropped, a heartbeat went unanswered, a new
 *   listener took over) and again once the subscription is proven live. An
 *   L1 entry records the epoch read before the L2 read that filled it, and
 *   is fresh only while the epoch is unchanged: entries filled before a gap
 *   are stale (served only within grace), whatever their TTL says.
 * - The epoch is a lease: `e` expires `3 * heartbeatMs` (at least 1 s, so
 *   that a busy machine's late timers do not make it lapse) after it was
 *   last written, and only the listener's heartbeat timer renews it. A listener
 *   that cannot apply messages although its process lives (SIGSTOPped, its
 *   event loop blocked) stops renewing, `e` disappears, and no L1 entry is
 *   fresh (each one reads as stale) until a listener writes a new epoch:
 *   the stalled one when it runs again, or another process of the host,
 *   which takes the claim over from a holder whose lease lapsed.
 * - `E`, the last epoch handed out (no expiry): a new epoch is `E + 1`,
 *   so a lapsed lease never brings an old epoch back. Starts at the
 *   creation time in ms, so a region made anew never reuses an old epoch.
 * - `H`, the host's random id: a listener ignores the messages its own host
 *   published (their writer applied them already).
 * - `L`, the listener's claim: `<handle token>/<nonce>`.
 *
 * ## The fence (Redis's client-side caching documents the same race)
 * A fill reads `s` before its L2 read, then writes L1 under the L1 writer
 * lock only if `s` is unchanged. An invalidation bumps `s` and deletes under
 * that same lock. So for a fill that read the old value from L2: if its
 * invalidation was applied before the fill's check, `s` moved and the fill
 * writes nothing; if after, the delete removes what the fill wrote. And an
 * invalidation applied before the fill read `s` was published after its
 * value reached L2 (writers write L2, then publish), so the L2 read sees the
 * new value. Cost: a fill racing any change on the host is not cached (the
 * caller still gets its value).
 *
 * A local write is fenced the same way: it reads `s` before its L2 write,
 * and if `s` moved by the time it writes L1, a newer write of another host
 * (or process) may have reached L1 first, so it deletes the key instead of
 * storing its own, maybe older, value. Tag invalidations delete the tag's
 * token from L1 rather than set the new one, since messages of different
 * hosts may arrive out of their L2 order; a later fill brings the token L2
 * holds.
 *
 * ## One listener per host
 * Every instance polls `L` every `electionMs`. The claim names a handle of
 * the meta region; the native library holds an OFD lock per handle, which
 * the kernel releases when its process dies, so `isHandleAlive` tells a
 * dead listener from a live one without any timeout; a live one that let
 * its epoch lease lapse counts as gone too. The first poller to see a dead,
 * lapsed or no listener swaps its own claim in under the meta region's
 * writer lock and becomes the listener: it bumps the epoch, subscribes, and
 * bumps it again once its first heartbeat comes back through the
 * subscription. A handle slot reused by a new process keeps the token, so
 * claims carry a nonce: seeing its own token with another nonce, the new
 * holder of the slot knows the claim's process is dead.
 *
 * ## Heartbeats
 * The listener publishes a counter on its host's heartbeat channel every
 * `heartbeatMs` and expects it back through its subscription before the
 * next one. A heartbeat missing, or the transport reporting a gap, ends the
 * "live" state (epoch bump); the next heartbeat that comes back starts it
 * again (epoch bump). After three missed heartbeats the listener drops its
 * subscription and subscribes anew.
 *
 * What it cannot see: between a listener's death and its successor's first
 * poll (at most `electionMs`), the host's fresh entries may miss an
 * invalidation; a listener alive but stalled (SIGSTOP, a blocked event loop)
 * applies messages late, by at most its lease (`3 * heartbeatMs`, at least 1 s), after
 * which the host's L1 is stale until a listener renews it; two instances may
 * both act as listener for a moment after a stalled one resumes, which costs
 * a duplicate delete, never a missed one.
 *
 * @module
 */

import { SharedCache } from "./cache.ts";
import { CacheError } from "./errors.ts";
import type { CacheLock } from "./guard.ts";
import { randomToken } from "./_tiered_l2.ts";
import type { L2Store } from "./_tiered_l2.ts";
import type { TieredTransport, TransportSubscription } from "./tiered_transport.ts";

/** The shortest epoch lease, in ms (see the module documentation). */
const LEASE_MIN_MS = 1_000;

/** The L1 key of a tag's current token. */
export const TAG_PREFIX = "\u0000t:";

/** An invalidation on the bus: h = origin host; d = keys deleted; t = tags deleted; c = cleared. */
interface BusMessage {
  h: string;
  d?: string[];
  t?: string[];
  c?: 1;
}

/** Options of {@linkcode Host.open}. */
export interface HostOptions {
  name: string;
  dir: string | undefined;
  heartbeatMs: number;
  electionMs: number;
  lockTimeoutMs: number | undefined;
}

function isLockUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "LockTimeout" || code === "LockHeld";
}

/** Lets a timer not keep the process alive, in Deno and in Bun. */
export function unref(timer: unknown): void {
  if (typeof timer === "object" && timer !== null && "unref" in timer) {
    (timer as { unref(): void }).unref();
    return;
  }
  // deno-lint-ignore no-explicit-any
  (globalThis as any).Deno?.unrefTimer?.(timer);
}

/** One TieredCache instance's view of its host. */
export class Host {
  readonly #l1: SharedCache;
  readonly #meta: SharedCache;
  readonly #l2: L2Store;
  readonly #transport: TieredTransport;
  readonly #options: HostOptions;
  readonly #claim: string;
  readonly #token: string;
  /** The host's id, shared by its processes. */
  readonly hostId: string;
  readonly #busChannel: string;
  readonly #hbChannel: string;
  #electionTimer: ReturnType<typeof setInterval> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #subscription: TransportSubscription | undefined;
  #subscribing = false;
  #listening = false;
  /** The subscription is proven live (a heartbeat came back since the last gap). */
  #live = false;
  #hbSent = 0;
  #hbEchoed = 0;
  /** The first heartbeat whose echo proves the subscription live again (sent after the last gap). */
  #liveFrom = 1;
  #missed = 0;
  #closed = false;
  /** An epoch bump failed and is retried on the next heartbeat. */
  #bumpOwed = false;
  /** Remote invalidations this instance applied as its host's listener. */
  applied = 0;
  /** Bus messages that could not be read. */
  malformed = 0;
  /** Gaps seen by this instance as listener (lost connection, missed heartbeat, takeover). */
  gaps = 0;

  private constructor(
    l1: SharedCache,
    meta: SharedCache,
    l2: L2Store,
    transport: TieredTransport,
    options: HostOptions,
  ) {
    this.#l1 = l1;
    this.#meta = meta;
    this.#l2 = l2;
    this.#transport = transport;
    this.#options = options;
    this.#token = meta.handleToken;
    this.#claim = `${this.#token}/${randomToken()}`;
    // add() is atomic across processes: the first opener's values stay.
    meta.add("E", Date.now(), { ttlMs: Infinity });
    meta.add("s", 0, { ttlMs: Infinity });
    meta.add("H", randomToken(), { ttlMs: Infinity });
    const hostId = meta.get("H");
    if (
      typeof hostId !== "string" || typeof meta.get("E") !== "number" ||
      typeof meta.get("s") !== "number"
    ) {
      throw new CacheError(
        "LockTimeout",
        `TieredCache ${
          JSON.stringify(options.name)
        }: the host's meta region could not be initialized (its writer lock stayed busy)`,
      );
    }
    this.hostId = hostId;
    this.#busChannel = l2.channel("bus");
    this.#hbChannel = l2.channel(`hb:${this.hostId}`);
  }

  /** Opens the meta region beside `l1` and starts taking part in the election. */
  static open(
    l1: SharedCache,
    l2: L2Store,
    transport: TieredTransport,
    options: HostOptions,
  ): Host {
    const meta = SharedCache.open(`${options.name}.tiered`, {
      capacity: 16,
      maxKeyBytes: 8,
      maxValueBytes: 64,
      dir: options.dir,
      lockTimeoutMs: options.lockTimeoutMs,
      decodeCacheBytes: 0,
    });
    let host: Host | undefined;
    try {
      const created = new Host(l1, meta, l2, transport, options);
      host = created;
      created.#electionTimer = setInterval(() => created.#elect(), options.electionMs);
      unref(host.#electionTimer);
      host.#elect();
      return host;
    } catch (e) {
      if (host !== undefined) clearInterval(host.#electionTimer);
      meta.close();
      throw e;
    }
  }

  /**
   * The host's epoch now (see the module documentation), a positive
   * number; 0 while no listener holds the lease (then nothing is fresh).
   */
  get epoch(): number {
    return (this.#meta.get("e") as number | undefined) ?? 0;
  }

  /** The host's invalidation sequence now. */
  get seq(): number {
    return this.#meta.get("s") as number;
  }

  /** True while this instance is its host's listener. */
  get listening(): boolean {
    return this.#listening;
  }

  /** True while this instance listens and its subscription is proven live. */
  get live(): boolean {
    return this.#live;
  }

  /**
   * Applies a change to L1 under its writer lock, after bumping the
   * sequence (so that fills racing it write nothing). If the lock cannot be
   * had, the epoch moves instead: every entry becomes stale.
   *
   * `seq0`, for a local write, is the sequence read before its L2 write:
   * `apply` is told (`raced`) when any change reached this host's L1
   * since, which may have been another writer's newer value of the same
   * key (applied here before this older one); the write must then delete
   * rather than store.
   */
  change(apply: (tx: CacheLock, raced: boolean) => void, seq0?: number): void {
    let tx: CacheLock;
    try {
      tx = this.#l1.lock();
    } catch (error) {
      if (!isLockUnavailable(error)) throw error;
      this.bumpEpoch();
      return;
    }
    try {
      const current = this.seq;
      const raced = seq0 !== undefined && current !== seq0;
      const next = (current ?? 0) + 1;
      this.#meta.set("s", next, { ttlMs: Infinity });
      // A dropped write of the sequence would leave the fence open: then
      // the whole L1 goes, which no fill can have raced.
      if (this.#meta.get("s") !== next) tx.clear();
      else apply(tx, raced);
    } finally {
      tx.release();
    }
  }

  /** Runs `write` under the L1 writer lock if the sequence is still `seq0`; true if it ran. */
  fill(seq0: number, write: (tx: CacheLock) => void): boolean {
    let tx: CacheLock;
    try {
      tx = this.#l1.lock();
    } catch (error) {
      if (isLockUnavailable(error)) return false;
      throw error;
    }
    try {
      if (this.seq !== seq0) return false;
      write(tx);
      return true;
    } finally {
      tx.release();
    }
  }

  /** Moves the epoch: every L1 entry filled before is stale from now on. */
  bumpEpoch(): void {
    const tx = this.#meta.lock();
    try {
      this.#bumpLocked(tx);
    } finally {
      tx.release();
    }
  }

  /** `bumpEpoch` under the meta region's lock: a new epoch, leased anew. */
  #bumpLocked(tx: CacheLock): void {
    const next = ((tx.get("E") as number | undefined) ?? Date.now()) + 1;
    tx.set("E", next, { ttlMs: Infinity });
    tx.set("e", next, { ttlMs: this.#leaseMs });
  }

  /** How long the epoch lives without a renewal by the listener. */
  get #leaseMs(): number {
    return Math.max(3 * this.#options.heartbeatMs, LEASE_MIN_MS);
  }

  /**
   * The listener's renewal of the epoch lease, from its heartbeat timer.
   * False if the claim is no longer this instance's (another process took
   * over while this one was stalled): it must stop listening. If the lease
   * lapsed, this listener was stalled and may have applied nothing
   * meanwhile: a new epoch, and a gap until the bus is proven live again.
   */
  #renewLease(): boolean {
    const tx = this.#meta.lock();
    try {
      if (tx.get("L") !== this.#claim) return false;
      const epoch = tx.get("e");
      if (epoch !== undefined) {
        tx.set("e", epoch, { ttlMs: this.#leaseMs });
        return true;
      }
      this.#bumpLocked(tx);
      this.#bumpOwed = false;
    } finally {
      tx.release();
    }
    this.#liveFrom = this.#hbSent + 1;
    this.#live = false;
    this.gaps++;
    return true;
  }

  /**
   * Moves the epoch from a callback or a timer, where a throw has nowhere
   * to go: if the meta region's lock cannot be had now, the bump is owed
   * and retried on every heartbeat until it succeeds. Until then the bus
   * is not called live.
   */
  #bumpEpochOwed(): void {
    try {
      this.bumpEpoch();
      this.#bumpOwed = false;
    } catch {
      this.#bumpOwed = true;
      this.#live = false;
    }
  }

  /** Publishes an invalidation for the other hosts. */
  async publish(message: Omit<BusMessage, "h">): Promise<void> {
    await this.#l2.publish(this.#busChannel, JSON.stringify({ h: this.hostId, ...message }));
  }

  /** One election round: keep, take over, or leave the listener's claim. */
  #elect(): void {
    if (this.#closed) return;
    try {
      const holder = this.#meta.get("L");
      if (holder === this.#claim) {
        if (!this.#listening) this.#startListening();
        return;
      }
      if (this.#listening) this.#stopListening();
      // A live holder keeps the claim while it renews the epoch lease.
      const alive = holder !== undefined && this.#isAlive(holder);
      if (alive && this.#meta.get("e") !== undefined) return;
      const tx = this.#meta.lock();
      try {
        // Only replace what we judged dead or lapsed: another instance may
        // have won meanwhile, or the holder renewed its lease (the renewal
        // and this check both run under the meta lock).
        if (tx.get("L") !== holder || (alive && tx.get("e") !== undefined)) return;
        tx.set("L", this.#claim, { ttlMs: Infinity });
      } finally {
        tx.release();
      }
      this.#startListening();
    } catch (error) {
      // A busy meta lock: the next round tries again.
      if (!isLockUnavailable(error) && (error as { code?: unknown })?.code !== "Closed") {
        throw error;
      }
    }
  }

  #isAlive(holder: unknown): boolean {
    if (typeof holder !== "string") return false;
    const slash = holder.lastIndexOf("/");
    const token = holder.slice(0, slash);
    // Our own slot with another nonce: its previous holder died.
    if (slash <= 0 || token === this.#token) return false;
    try {
      return this.#meta.isHandleAlive(token);
    } catch {
      return false;
    }
  }

  #startListening(): void {
    this.#listening = true;
    this.#live = false;
    this.#hbSent = this.#hbEchoed = 0;
    this.#liveFrom = 1;
    this.#missed = 0;
    // Whatever the previous listener (or none) missed: stale from here.
    this.gaps++;
    this.#bumpEpochOwed();
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(), this.#options.heartbeatMs);
    unref(this.#heartbeatTimer);
    this.#subscribe();
  }

  #stopListening(): void {
    this.#listening = false;
    this.#live = false;
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    const sub = this.#subscription;
    this.#subscription = undefined;
    sub?.close().catch(() => {});
  }

  #subscribe(): void {
    if (this.#subscribing || this.#subscription !== undefined) return;
    this.#subscribing = true;
    // A client may wait for a dead server indefinitely: after three
    // heartbeats the attempt is abandoned (closed if it ever succeeds) and
    // the next heartbeat starts another.
    let abandoned = false;
    const timer = setTimeout(() => {
      abandoned = true;
      this.#subscribing = false;
    }, 3 * this.#options.heartbeatMs);
    unref(timer);
    this.#transport.subscribe(
      [this.#busChannel, this.#hbChannel],
      (channel, message) => this.#onMessage(channel, message),
      () => this.#onGap(),
    ).then(
      (sub) => {
        clearTimeout(timer);
        if (abandoned || !this.#listening || this.#closed || this.#subscription !== undefined) {
          sub.close().catch(() => {});
          return;
        }
        this.#subscribing = false;
        this.#subscription = sub;
        this.#heartbeat();
      },
      () => {
        // The next heartbeat round tries again.
        clearTimeout(timer);
        if (!abandoned) this.#subscribing = false;
      },
    );
  }

  /** Sends the next heartbeat after checking the previous one came back. */
  #heartbeat(): void {
    if (!this.#listening) return;
    try {
      if (!this.#renewLease()) {
        this.#stopListening();
        return;
      }
    } catch {
      // A busy meta lock: the lease may lapse, which only makes L1 stale.
    }
    if (this.#bumpOwed) this.#bumpEpochOwed();
    if (this.#subscription === undefined) {
      this.#subscribe();
      return;
    }
    if (this.#hbEchoed !== this.#hbSent) {
      this.#missed++;
      this.#onGap();
      if (this.#missed >= 3) {
        // The subscription may be dead for good (a client that gave up
        // reconnecting): start a new one.
        const sub = this.#subscription;
        this.#subscription = undefined;
        this.#missed = 0;
        sub.close().catch(() => {});
        this.#subscribe();
        return;
      }
    }
    const n = ++this.#hbSent;
    this.#l2.publish(this.#hbChannel, String(n), this.#options.heartbeatMs).catch(() => {});
  }

  #onGap(): void {
    this.#liveFrom = this.#hbSent + 1;
    if (!this.#live) return;
    this.#live = false;
    this.gaps++;
    this.#bumpEpochOwed();
  }

  #onMessage(channel: string, message: string): void {
    if (!this.#listening) return;
    if (channel === this.#hbChannel) {
      const n = Number(message);
      if (!(n > this.#hbEchoed && n <= this.#hbSent)) return;
      this.#hbEchoed = n;
      this.#missed = 0;
      // Only a heartbeat published after the last gap proves the
      // subscription as it is now.
      if (!this.#live && n >= this.#liveFrom && !this.#bumpOwed) {
        this.#live = true;
        // Entries filled while the bus was not proven live become stale.
        this.#bumpEpochOwed();
      }
      return;
    }
    let msg: BusMessage;
    try {
      msg = JSON.parse(message);
    } catch {
      this.malformed++;
      return;
    }
    if (typeof msg !== "object" || msg === null || msg.h === this.hostId) return;
    // Taken over while stalled: the new listener applies what follows (and
    // moved the epoch past what this one missed).
    if (this.#meta.get("L") !== this.#claim) {
      this.#stopListening();
      return;
    }
    this.applied++;
    try {
      this.#apply(msg);
    } catch {
      // Not applied (the region failed): treat it as a gap.
      this.#bumpEpochOwed();
    }
  }

  #apply(msg: BusMessage): void {
    this.change((tx) => {
      if (msg.c === 1) tx.clear();
      if (Array.isArray(msg.d)) { for (const key of msg.d) tx.delete(String(key)); }
      // A tag's L1 token is deleted, never set from a message: messages
      // from different hosts may arrive out of their L2 order. Entries of
      // the tag are unusable until a fill brings the token L2 has now.
      if (Array.isArray(msg.t)) { for (const tag of msg.t) tx.delete(TAG_PREFIX + String(tag)); }
    });
  }

  /** Leaves the election (releasing the claim if held) and closes the meta region. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#electionTimer);
    const wasListening = this.#listening;
    const sub = this.#subscription;
    this.#stopListening();
    if (sub !== undefined) await sub.close().catch(() => {});
    if (wasListening) {
      try {
        const tx = this.#meta.lock();
        try {
          if (tx.get("L") === this.#claim) tx.delete("L");
        } finally {
          tx.release();
        }
      } catch {
        // The claim dies with the handle anyway: isHandleAlive turns false.
      }
    }
    this.#meta.close();
  }
}
