/**
 * The one interface {@linkcode TieredCache} needs from a Redis client, and
 * one adapter per client: Bun's built-in `RedisClient` and the `redis` npm
 * client (node-redis, used under Deno). Neither client is a dependency of
 * this module: an adapter only calls the client it is given; a URL opens
 * Bun's own client, and elsewhere the caller passes a node-redis client.
 *
 * A transport carries commands and one subscription. It reports a gap
 * (`onGap`) whenever the subscription's connection was lost, since messages
 * published meanwhile were not delivered; TieredCache then treats its host's
 * shared L1 as stale until the subscription is proven live again.
 *
 * @module
 */

/**
 * An active subscription of a {@linkcode TieredTransport}.
 *
 * @example
 * ```ts ignore
 * const sub = await transport.subscribe(["bus"], (channel, message) => {}, () => {});
 * await sub.close();
 * ```
 */
export interface TransportSubscription {
  /** Ends the subscription and closes its connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * What TieredCache needs from Redis: single commands, and a subscription on
 * a connection of its own. Implement it to use another client.
 *
 * @example
 * ```ts ignore
 * const transport: TieredTransport = {
 *   send: (args) => myClient.call(...args),
 *   subscribe: async (channels, onMessage, onGap) => { ...; return { close: async () => {} }; },
 *   close: async () => {},
 * };
 * ```
 */
export interface TieredTransport {
  /**
   * Sends one command (`["GET", "k"]`) and resolves with its reply: a
   * string, a number, null, or an array of those. Rejects on an error reply
   * or a broken connection. Must not queue a command while disconnected
   * (a write replayed late would overwrite a newer one).
   */
  send(args: readonly string[]): Promise<unknown>;
  /**
   * Subscribes to `channels` on a dedicated connection; resolves once the
   * subscription is active. `onMessage(channel, message)` runs for every
   * message; `onGap()` runs whenever the connection was lost (messages may
   * have been missed), after which the transport keeps trying to
   * subscribe again.
   */
  subscribe(
    channels: readonly string[],
    onMessage: (channel: string, message: string) => void,
    onGap: () => void,
  ): Promise<TransportSubscription>;
  /** Closes the connections this transport opened (not a client it was handed). Idempotent. */
  close(): Promise<void>;
}

/**
 * The part of Bun's `RedisClient` the adapter uses.
 *
 * @example
 * ```ts ignore
 * const client: BunRedisClientLike = new Bun.RedisClient(url, { enableOfflineQueue: false });
 * ```
 */
export interface BunRedisClientLike {
  /** Sends a raw command. */
  send(command: string, args: string[]): Promise<unknown>;
  /** A new client with the same options (for the subscription). */
  duplicate(): Promise<BunRedisClientLike>;
  /** Subscribes this client to `channels`. */
  subscribe(
    channels: string | string[],
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  /** Connects (or reconnects). */
  connect(): Promise<void>;
  /** Closes the connection. */
  close(): void;
  /** Runs on every connection, the first and each reconnection. */
  onconnect: null | (() => void);
  /** Runs when the connection is closed for good. */
  onclose: null | ((error: Error) => void);
}

/**
 * The part of node-redis's client (`createClient()` of the `redis` package) the adapter uses.
 *
 * @example
 * ```ts ignore
 * const client = createClient({ url, disableOfflineQueue: true }) as unknown as NodeRedisClientLike;
 * ```
 */
export interface NodeRedisClientLike {
  /** Sends a raw command. */
  sendCommand(args: string[]): Promise<unknown>;
  /** A new, unconnected client with the same options (for the subscription). */
  duplicate(): NodeRedisClientLike;
  /** Connects. */
  connect(): Promise<unknown>;
  /** Subscribes this client to `channels`. */
  subscribe(
    channels: string | string[],
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  /** Adds an event listener (`error`, `reconnecting`, `end`, ...). */
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Closes the client (node-redis 5 and later). */
  close?(): Promise<unknown>;
  /** Closes the client (node-redis 4). */
  quit?(): Promise<unknown>;
  /** Closes the client at once. */
  destroy?(): unknown;
  /** True while connected. */
  readonly isOpen?: boolean;
}

/** True for an object shaped like Bun's `RedisClient`. */
function isBunClient(client: unknown): client is BunRedisClientLike {
  const c = client as Partial<BunRedisClientLike> | null;
  return typeof c?.send === "function" && typeof c?.duplicate === "function" &&
    "onconnect" in (c as object);
}

/** True for an object shaped like node-redis's client. */
function isNodeClient(client: unknown): client is NodeRedisClientLike {
  const c = client as Partial<NodeRedisClientLike> | null;
  return typeof c?.sendCommand === "function" && typeof c?.duplicate === "function";
}

/**
 * A transport over Bun's built-in `RedisClient`. Commands go through
 * `client`; the subscription uses a duplicate of it, which this adapter
 * re-subscribes after every reconnection (Bun does not) and reports as a
 * gap. `owned`: close `client` too on {@linkcode TieredTransport.close}.
 *
 * @example
 * ```ts ignore
 * const client = new Bun.RedisClient("redis://127.0.0.1:6379", { enableOfflineQueue: false });
 * const transport = bunRedisTransport(client);
 * ```
 */
export function bunRedisTransport(
  client: BunRedisClientLike,
  options: { owned?: boolean } = {},
): TieredTransport {
  const subscribers = new Set<BunRedisClientLike>();
  let closed = false;
  return {
    send: (args) => client.send(args[0], args.slice(1) as string[]),
    async subscribe(channels, onMessage, onGap) {
      const sub = await client.duplicate();
      subscribers.add(sub);
      const listener = (message: string, channel: string) => onMessage(channel, message);
      const list = [...channels];
      let ended = false;
      // duplicate() may hand back a client already connected, whose first
      // onconnect has run.
      let connects = (sub as { connected?: boolean }).connected ? 1 : 0;
      // onconnect runs for the first connection and after each automatic
      // reconnection. Bun drops subscriptions on a reconnection, so every
      // later connect is a gap and needs a new SUBSCRIBE.
      sub.onconnect = () => {
        if (connects++ === 0 || ended) return;
        onGap();
        sub.subscribe(list, listener).catch(() => onGap());
      };
      sub.onclose = () => {
        if (!ended) onGap();
      };
      try {
        if (!(sub as { connected?: boolean }).connected) await sub.connect();
        if (connects === 0) connects = 1;
        await sub.subscribe(list, listener);
      } catch (error) {
        ended = true;
        subscribers.delete(sub);
        sub.close();
        throw error;
      }
      return {
        close() {
          if (!ended) {
            ended = true;
            subscribers.delete(sub);
            sub.close();
          }
          return Promise.resolve();
        },
      };
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      for (const sub of subscribers) sub.close();
      subscribers.clear();
      if (options.owned) client.close();
      return Promise.resolve();
    },
  };
}

/** How long closing a node-redis client waits for its pending replies, in ms. */
const NODE_CLOSE_WAIT_MS = 1_000;

/**
 * Ends a node-redis client, whichever of `close`/`quit`/`destroy` its
 * version has. A graceful close waits for every pending reply, and a
 * stopped Redis never sends them (commands whose callers timed out stay
 * queued): past `NODE_CLOSE_WAIT_MS` the client is destroyed instead.
 */
async function endNodeClient(client: NodeRedisClientLike): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let ended = false;
  try {
    const graceful = typeof client.close === "function"
      ? client.close()
      : typeof client.quit === "function"
      ? client.quit()
      : undefined;
    if (graceful === undefined) {
      client.destroy?.();
      return;
    }
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, NODE_CLOSE_WAIT_MS));
    // A rejection means not ended: destroyed below.
    const done = graceful.then(() => {
      ended = true;
    }, () => {});
    await Promise.race([done, late]);
  } catch {
    // Ended below.
  } finally {
    clearTimeout(timer);
  }
  // destroy() also ends a close() still draining (and rejects what it waits for).
  if (!ended) client.destroy?.();
}

/**
 * A transport over node-redis (the `redis` npm package), which must be
 * connected. Commands go through `client`; the subscription uses a
 * duplicate, which node-redis re-subscribes after a reconnection; the
 * adapter reports each disconnection as a gap. `owned`: close `client` too
 * on {@linkcode TieredTransport.close}. `subscribeTimeoutMs` (default
 * 5,000) bounds the connection and SUBSCRIBE of a subscription: a Redis
 * that accepts connections but never answers (SIGSTOP) would otherwise
 * keep each attempt, and its socket, open until it answers.
 *
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * const client = await createClient({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }).connect();
 * const transport = nodeRedisTransport(client);
 * ```
 */
export function nodeRedisTransport(
  client: NodeRedisClientLike,
  options: { owned?: boolean; subscribeTimeoutMs?: number } = {},
): TieredTransport {
  const subscribeTimeoutMs = options.subscribeTimeoutMs ?? 5_000;
  const subscribers = new Set<NodeRedisClientLike>();
  let closed = false;
  return {
    send: (args) => client.sendCommand(args as string[]),
    async subscribe(channels, onMessage, onGap) {
      const sub = client.duplicate();
      subscribers.add(sub);
      let ended = false;
      // An error on the subscriber without a listener would be thrown by the
      // EventEmitter; the gap it causes is what matters here.
      sub.on("error", () => {});
      sub.on("reconnecting", () => {
        if (!ended) onGap();
      });
      sub.on("end", () => {
        if (!ended) onGap();
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`SUBSCRIBE took over ${subscribeTimeoutMs} ms`)),
            subscribeTimeoutMs,
          );
        });
        const attempt = (async () => {
          await sub.connect();
          await sub.subscribe([...channels], (message, channel) => onMessage(channel, message));
        })();
        attempt.catch(() => {});
        await Promise.race([attempt, timeout]);
      } catch (error) {
        ended = true;
        subscribers.delete(sub);
        // Not endNodeClient: a graceful close would wait for the answer.
        sub.destroy?.();
        throw error;
      } finally {
        clearTimeout(timer);
      }
      return {
        async close() {
          if (ended) return;
          ended = true;
          subscribers.delete(sub);
          await endNodeClient(sub);
        },
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      const subs = [...subscribers];
      subscribers.clear();
      await Promise.all(subs.map(endNodeClient));
      if (options.owned) await endNodeClient(client);
    },
  };
}

/**
 * Where TieredCache's L2 is: a URL, a client of either kind, or a transport.
 *
 * @example
 * ```ts ignore
 * const l2: L2Connection = { url: "redis://127.0.0.1:6379" }; // or { client } or { transport }
 * ```
 */
export interface L2Connection {
  /** `redis://host:port`: under Bun, opens a `RedisClient` of its own. Elsewhere pass `client`. */
  url?: string;
  /** A connected client: Bun's `RedisClient` or node-redis's. Not closed by TieredCache. */
  client?: unknown;
  /** Any implementation of {@linkcode TieredTransport}. Not closed by TieredCache. */
  transport?: TieredTransport;
}

/** Checks that `l2` names exactly one valid connection; throws `TypeError` saying what is wrong. */
export function checkL2Connection(l2: L2Connection): void {
  const given = [l2.url, l2.client, l2.transport].filter((x) => x !== undefined).length;
  if (given !== 1) {
    throw new TypeError(`l2 must have exactly one of url, client or transport, got ${given}`);
  }
  if (l2.transport !== undefined) {
    const t = l2.transport as Partial<TieredTransport>;
    if (
      typeof t.send !== "function" || typeof t.subscribe !== "function" ||
      typeof t.close !== "function"
    ) {
      throw new TypeError("l2.transport must have send, subscribe and close methods");
    }
  } else if (l2.client !== undefined) {
    if (!isBunClient(l2.client) && !isNodeClient(l2.client)) {
      throw new TypeError(
        "l2.client must be Bun's RedisClient or a node-redis client (createClient() of the redis package)",
      );
    }
  } else if (typeof l2.url !== "string" || !/^rediss?:\/\//.test(l2.url)) {
    throw new TypeError(
      `l2.url must be a redis:// or rediss:// URL, got ${JSON.stringify(l2.url)}`,
    );
  } else if (!hasBunRedis()) {
    throw new TypeError(NO_URL_CLIENT);
  }
}

/** Why `l2.url` fails outside Bun. */
const NO_URL_CLIENT =
  "l2.url needs Bun's built-in RedisClient; elsewhere pass l2.client, a connected client of the redis npm package: createClient({ url, disableOfflineQueue: true })";

/** True where Bun's built-in RedisClient exists. */
function hasBunRedis(): boolean {
  // deno-lint-ignore no-explicit-any
  return (globalThis as any).Bun?.RedisClient !== undefined;
}

/** Makes the transport `l2` describes; `owned` when TieredCache must close it. */
export async function openTransport(
  l2: L2Connection,
  connectTimeoutMs: number,
): Promise<{ transport: TieredTransport; owned: boolean }> {
  checkL2Connection(l2);
  if (l2.transport !== undefined) return { transport: l2.transport, owned: false };
  if (l2.client !== undefined) {
    const transport = isBunClient(l2.client)
      ? bunRedisTransport(l2.client)
      : nodeRedisTransport(l2.client as NodeRedisClientLike, {
        subscribeTimeoutMs: connectTimeoutMs,
      });
    return { transport, owned: false };
  }
  const url = l2.url as string;
  // deno-lint-ignore no-explicit-any
  const bun = (globalThis as any).Bun;
  if (hasBunRedis()) {
    // No offline queue: a command sent while disconnected fails at once
    // instead of running late (see TieredTransport.send).
    const client = new bun.RedisClient(url, {
      enableOfflineQueue: false,
      connectionTimeout: connectTimeoutMs,
      autoReconnect: true,
    }) as BunRedisClientLike;
    await client.connect();
    return { transport: bunRedisTransport(client, { owned: true }), owned: true };
  }
  throw new TypeError(NO_URL_CLIENT);
}
