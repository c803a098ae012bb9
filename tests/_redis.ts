/**
 * A real redis-server for tests: on a free loopback port, without
 * persistence, ready when it says so on stdout (no sleeps). Stop, pause
 * (SIGSTOP), kill (SIGKILL) and restart it on the same port. `close()` in a
 * `finally` ends it whatever happened.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import process from "node:process";
import { createClient } from "redis";
import {
  bunRedisTransport,
  type L2Connection,
  type NodeRedisClientLike,
  nodeRedisTransport,
  type TieredTransport,
  type TransportSubscription,
} from "../mod.ts";

/** The redis-server binary: `$REDIS_SERVER`, else Debian's, else PATH. */
function binary(): string {
  const env = process.env.REDIS_SERVER;
  if (env) return env;
  return existsSync("/usr/bin/redis-server") ? "/usr/bin/redis-server" : "redis-server";
}

/** A port the OS reports free on 127.0.0.1 now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server child process. */
export class RedisServer {
  #proc: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  port = 0;

  private constructor() {}

  /** Starts a server on a free port (a port taken meanwhile: another one). */
  static async start(): Promise<RedisServer> {
    const server = new RedisServer();
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      server.port = await freePort();
      try {
        await server.#spawn();
        return server;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.#proc?.pid ?? 0;
  }

  /** Spawns on `this.port`; resolves when it accepts connections, rejects if it exits first or takes over 20 s. */
  #spawn(): Promise<void> {
    const proc = spawn(binary(), [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
    ], { stdio: ["ignore", "pipe", "pipe"] });
    this.#proc = proc;
    this.#exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    return new Promise<void>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(
        () => fail(new Error(`redis-server not ready in 20 s: ${out}`)),
        20_000,
      );
      const fail = (error: Error) => {
        clearTimeout(timer);
        proc.kill("SIGKILL");
        reject(error);
      };
      proc.once(
        "error",
        (error) =>
          fail(
            new Error(
              `cannot start ${binary()}: ${error.message}. Run scripts/setup.sh (it installs redis-server)`,
            ),
          ),
      );
      const early = (code: number | null) =>
        fail(new Error(`redis-server exited with ${code}: ${out}`));
      proc.once("exit", early);
      proc.stdout!.setEncoding("utf8");
      proc.stdout!.on("data", (chunk: string) => {
        if (out.length < 10_000) out += chunk;
        if (out.includes("Ready to accept connections")) {
          clearTimeout(timer);
          proc.removeListener("exit", early);
          resolve();
        }
      });
      proc.stderr!.resume();
    });
  }

  /** Sends a real signal to the server. */
  signal(signal: NodeJS.Signals): void {
    const pid = this.#proc?.pid;
    if (pid === undefined || this.#proc?.exitCode !== null || this.#proc?.signalCode !== null) {
      return;
    }
    try {
      process.kill(pid, signal);
    } catch {
      // Gone already.
    }
  }

  /** SIGKILLs the server and waits for it to be gone. */
  async kill(): Promise<void> {
    this.signal("SIGCONT");
    this.signal("SIGKILL");
    await this.#exited;
  }

  /** Starts a new server on the same port (after `kill`), empty. */
  async restart(): Promise<void> {
    await this.kill();
    let lastError: unknown;
    // The port may linger a moment after the kill; bounded retries.
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await this.#spawn();
        return;
      } catch (error) {
        lastError = error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    throw lastError;
  }

  /** Ends the server. Idempotent. */
  async close(): Promise<void> {
    await this.kill();
  }
}

/**
 * What a test passes as `l2` for this runtime: `{ url }` under Bun (Bun's
 * RedisClient, opened by TieredCache), else `{ client }`, a connected
 * node-redis client, with the function that closes it.
 */
export async function runtimeL2(
  url: string,
): Promise<{ l2: L2Connection; close(): Promise<void> }> {
  // deno-lint-ignore no-explicit-any
  if ((globalThis as any).Bun !== undefined) return { l2: { url }, close: () => Promise.resolve() };
  const client = createClient({ url, disableOfflineQueue: true });
  client.on("error", () => {});
  await client.connect();
  return {
    l2: { client },
    close: async () => {
      try {
        await client.close();
      } catch {
        client.destroy();
      }
    },
  };
}

/**
 * A transport over this runtime's client (Bun's RedisClient under Bun, the
 * redis npm client elsewhere), or over node-redis when `kind` says so.
 */
export async function clientTransport(
  url: string,
  kind: "runtime" | "node-redis" = "runtime",
  subscribeTimeoutMs?: number,
): Promise<TieredTransport> {
  // deno-lint-ignore no-explicit-any
  const bun = (globalThis as any).Bun;
  if (kind === "runtime" && bun !== undefined) {
    const client = new bun.RedisClient(url, { enableOfflineQueue: false });
    await client.connect();
    return bunRedisTransport(client, { owned: true });
  }
  const client = createClient({ url, disableOfflineQueue: true });
  client.on("error", () => {});
  await client.connect();
  return nodeRedisTransport(client as unknown as NodeRedisClientLike, {
    owned: true,
    subscribeTimeoutMs,
  });
}

/**
 * Wraps a transport: counts commands, lets a test hold a command's reply
 * until it says so (`hold` returns a gate for the commands it picks), fail
 * commands unsent (`fail`), and lose subscription messages then report the
 * gap (`drop`, `gap()`).
 */
export class GatedTransport implements TieredTransport {
  readonly inner: TieredTransport;
  /** Every command sent, but heartbeats and bus publishes. */
  readonly sent: string[][] = [];
  /** Picks commands to hold, once they have run in Redis: the caller gets the reply only when the returned promise resolves. */
  hold: ((args: readonly string[]) => Promise<void> | undefined) | undefined;
  /** Picks commands to fail without sending them, as a broken connection would. */
  fail: ((args: readonly string[]) => boolean) | undefined;
  /** Picks subscription messages to lose (never delivered), as a broken connection would. */
  drop: ((channel: string, message: string) => boolean) | undefined;
  /** Messages `drop` picked. */
  dropped = 0;
  readonly #gaps: (() => void)[] = [];

  constructor(inner: TieredTransport) {
    this.inner = inner;
  }

  async send(args: readonly string[]): Promise<unknown> {
    if (args[0] !== "PUBLISH") this.sent.push([...args]);
    if (this.fail?.(args)) throw new Error(`GatedTransport: ${args[0]} failed on purpose`);
    const reply = await this.inner.send(args);
    // `hold` sees a command only once its reply is here, so a test that
    // learns of it from `hold` knows the command has already run in Redis
    // (asked before the send, a later command of the test could overtake it).
    const gate = this.hold?.(args);
    if (gate !== undefined) await gate;
    return reply;
  }

  /**
   * Holds the reply of the first command `pick` chooses, once it has run in
   * Redis: `reached` resolves then, and its caller gets the reply only after
   * `open()`.
   */
  holdOnce(pick: (args: readonly string[]) => boolean): { reached: Promise<void>; open(): void } {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => open = resolve);
    let held!: () => void;
    const reached = new Promise<void>((resolve) => held = resolve);
    this.hold = (args) => {
      if (!pick(args)) return undefined;
      this.hold = undefined;
      held();
      return gate;
    };
    return { reached, open };
  }

  subscribe(
    channels: readonly string[],
    onMessage: (channel: string, message: string) => void,
    onGap: () => void,
  ): Promise<TransportSubscription> {
    this.#gaps.push(onGap);
    return this.inner.subscribe(channels, (channel, message) => {
      if (this.drop?.(channel, message)) {
        this.dropped++;
        return;
      }
      onMessage(channel, message);
    }, onGap);
  }

  /**
   * Reports a gap to every subscriber, as a transport does after losing its
   * connection: with `drop`, this stages "messages were lost, then the
   * transport noticed" at a moment the test picks.
   */
  gap(): void {
    for (const onGap of this.#gaps) onGap();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
