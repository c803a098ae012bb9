/**
 * What every benchmark of the suite shares: the runtime, the machine and
 * versions recorded in each result file, the seeded random streams (Zipf
 * ranks, key ids), the keys and values every contender gets, statistics,
 * a fresh temporary directory per run, and the Redis server the harness
 * starts and stops.
 *
 * Nothing here measures; the `*_bench.ts`-style entry points do.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createConnection, createServer } from "node:net";
import os from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

// deno-lint-ignore no-explicit-any
const runtimeGlobal = globalThis as any;

/** The runtime running this file. */
export const runtime: "bun" | "deno" = runtimeGlobal.Bun !== undefined ? "bun" : "deno";

/** The runtime's version and engine, e.g. "1.4.4 (JavaScriptCore)". */
export const runtimeVersion: string = runtime === "bun"
  ? `${runtimeGlobal.Bun.version} (JavaScriptCore, Bun revision ${
    String(runtimeGlobal.Bun.revision).slice(0, 9)
  })`
  : `${runtimeGlobal.Deno.version.deno} (V8 ${runtimeGlobal.Deno.version.v8})`;

/** The repository root (with a trailing slash). */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** Where result files go. */
export const RESULTS_DIR: string = join(ROOT, "bench", "results");

/** A monotonic clock in nanoseconds (Bun's own counter, else performance.now). */
export const nowNs: () => number = runtime === "bun"
  ? runtimeGlobal.Bun.nanoseconds
  : () => performance.now() * 1e6;

// ---------------------------------------------------------------- arguments

/** `--name value` and `--flag` pairs of argv; values stay strings. */
export function parseArgs(argv: string[] = process.argv.slice(2)): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new TypeError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf("=");
    if (eq > 0) {
      out.set(arg.slice(2, eq), arg.slice(eq + 1));
    } else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) {
      out.set(arg.slice(2), argv[++i]);
    } else {
      out.set(arg.slice(2), "true");
    }
  }
  return out;
}

/** A positive number argument, or `fallback`. */
export function numberArg(args: Map<string, string>, name: string, fallback: number): number {
  const text = args.get(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`--${name} must be a positive number, got ${text}`);
  }
  return value;
}

/** The command that reproduces this run, as typed from the repository root. */
export function thisCommand(script: string, argv: string[] = process.argv.slice(2)): string {
  const head = runtime === "bun" ? "bun run" : "deno run -A";
  return [head, script, ...argv.map((a) => (/^[\w./:=,-]+$/.test(a) ? a : JSON.stringify(a)))].join(
    " ",
  );
}

// ---------------------------------------------------------------- machine and versions

/** The machine, recorded in every result file. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  arch: string;
  loadAverageAtStart: number[];
  hypervisor?: string;
}

export function machineInfo(): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? "unknown";
  let hypervisor: string | undefined;
  try {
    const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
    const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1];
    if (model !== undefined) cpuModel = model.trim();
    const family = /^cpu family\s*:\s*(\d+)$/m.exec(cpuinfo)?.[1];
    const modelNo = /^model\s*:\s*(\d+)$/m.exec(cpuinfo)?.[1];
    if (family !== undefined) cpuModel += ` (family ${family}, model ${modelNo})`;
    if (/^flags\s*:.*\bhypervisor\b/m.test(cpuinfo)) {
      hypervisor = "yes (the hypervisor flag is set)";
    }
  } catch {
    // Not Linux: os.cpus() it is.
  }
  return {
    cpuModel,
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    arch: process.arch,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    hypervisor,
  };
}

/** The version of an npm package installed in node_modules. */
export function packageVersion(name: string): string {
  try {
    const text = readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8");
    return JSON.parse(text).version as string;
  } catch {
    return "not installed";
  }
}

/** The repository's commit, with "+dirty" when the work tree differs from it. */
export function gitRevision(): string {
  const head = spawnSync("git", ["rev-parse", "--short=12", "HEAD"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (head.status !== 0) return "unknown";
  const dirty = spawnSync("git", ["status", "--porcelain", "--", "lib", "zig/src", "mod.ts"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  return head.stdout.trim() +
    (dirty.stdout.trim() === "" ? "" : "+dirty (lib/, zig/src/ or mod.ts)");
}

/** The fields every result file starts with. */
export interface ResultHeader {
  benchmark: string;
  command: string;
  startedAt: string;
  runtime: string;
  runtimeVersion: string;
  machine: MachineInfo;
  revision: string;
  versions: Record<string, string>;
}

export function resultHeader(
  benchmark: string,
  command: string,
  versions: Record<string, string>,
): ResultHeader {
  return {
    benchmark,
    command,
    startedAt: new Date().toISOString(),
    runtime,
    runtimeVersion,
    machine: machineInfo(),
    revision: gitRevision(),
    versions: {
      "shm-cache": `${packageVersion("../")} @ ${gitRevision()}`,
      mitata: packageVersion("mitata"),
      ...versions,
    },
  };
}

/** Writes `data` to bench/results/`file` (pretty JSON) and says so on stderr. */
export function writeResult(file: string, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = file.includes("/") ? file : join(RESULTS_DIR, file);
  writeFileSync(path, JSON.stringify(data, null, 1) + "\n");
  process.stderr.write(`wrote ${path}\n`);
  return path;
}

// ---------------------------------------------------------------- random streams

/** sfc32: a small, fast, seeded generator of floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed >>> 0;
  const next = (): number => {
    a >>>= 0, b >>>= 0, c >>>= 0, d >>>= 0;
    const t = (a + b | 0) + d | 0;
    d = d + 1 | 0;
    a = b ^ b >>> 9;
    b = c + (c << 3) | 0;
    c = c << 21 | c >>> 11;
    c = c + t | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/**
 * A Zipf sampler over ranks 0..n-1 (rank 0 the most popular), P(r) ∝
 * 1/(r+1)^s, by inverse CDF with a binary search.
 */
export function zipf(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) cdf[r] = sum += 1 / Math.pow(r + 1, s);
  for (let r = 0; r < n; r++) cdf[r] /= sum;
  return () => {
    const u = random();
    let lo = 0, hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** `count` Zipf ranks over `n` keys, in a typed array (the benchmark's key stream). */
export function zipfStream(n: number, s: number, count: number, seed: number): Uint32Array {
  const next = zipf(n, s, rng(seed));
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = next();
  return out;
}

const ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789";

/**
 * `count` distinct ASCII ids whose keys `"user:" + id` are 16 to 40 bytes
 * long (ids of 11 to 35 characters), in random order.
 */
export function makeIds(
  count: number,
  seed: number,
  avoid: ReadonlySet<string> = new Set(),
): string[] {
  const random = rng(seed);
  const seen = new Set<string>();
  const out: string[] = [];
  while (out.length < count) {
    const length = 11 + Math.floor(random() * 25);
    let id = "";
    for (let i = 0; i < length; i++) id += ID_CHARS[Math.floor(random() * ID_CHARS.length)];
    if (seen.has(id) || avoid.has(id)) continue;
    seen.add(id);
    out.push(id);
  }
  return out;
}

/** A seeded Fisher-Yates shuffle of a copy of `items`. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const random = rng(seed);
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

// ---------------------------------------------------------------- the values

/** The 64-byte ASCII string value. */
export const STRING_64 = "v".repeat(8) +
  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV".slice(0, 56);

/** The small object value (a typical session or profile record; 83 bytes as JSON). */
export const SMALL_OBJECT: Readonly<Record<string, unknown>> = Object.freeze({
  id: 4711,
  name: "Ada Lovelace",
  email: "ada@example.org",
  roles: ["admin", "dev"],
  active: true,
});

/** The 1 KiB binary value. */
export function bytes1k(): Uint8Array {
  const out = new Uint8Array(1024);
  for (let i = 0; i < out.length; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
}

// ---------------------------------------------------------------- statistics

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median, minimum and maximum of a set of per-round figures. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  rounds: number[];
}

export function spread(values: readonly number[]): Spread {
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    rounds: [...values],
  };
}

// ---------------------------------------------------------------- temporary directories

const DIR_PREFIX = "shm-cache-peers-";

/** The base of temporary directories: /dev/shm when it exists (like the library's default). */
export function tempBase(): string {
  try {
    if (statSync("/dev/shm").isDirectory()) return "/dev/shm";
  } catch {
    // No /dev/shm: the system temp directory.
  }
  return os.tmpdir();
}

/**
 * A fresh 0700 directory for this run's cache files (shm-cache, lmdb and
 * SQLite all keep theirs there). Directories of earlier runs whose process
 * is gone are removed first.
 */
export function freshDir(): string {
  const base = tempBase();
  for (const name of readdirSync(base)) {
    const pid = name.startsWith(DIR_PREFIX)
      ? /^(\d+)-/.exec(name.slice(DIR_PREFIX.length))?.[1]
      : undefined;
    if (pid === undefined) continue;
    try {
      process.kill(Number(pid), 0);
    } catch (error) {
      if ((error as { code?: string }).code === "ESRCH") {
        rmSync(join(base, name), { recursive: true, force: true });
      }
    }
  }
  return mkdtempSync(join(base, `${DIR_PREFIX}${process.pid}-`));
}

// ---------------------------------------------------------------- Redis

/** A Redis server started by the harness on a free loopback port. */
export interface RedisServer {
  url: string;
  port: number;
  version: string;
  config: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function ping(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" });
    let text = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("error", () => done(false));
    socket.on("data", (chunk) => {
      text += chunk.toString();
      if (text.includes("\r\n")) done(text.startsWith("+PONG"));
    });
    socket.once("connect", () => socket.write("PING\r\n"));
    setTimeout(() => done(false), 500);
  });
}

/** The redis-server binary, or undefined when it is not installed. */
export function redisServerPath(): string | undefined {
  for (
    const dir of (process.env.PATH ?? "").split(":").concat([
      "/usr/bin",
      "/usr/local/bin",
      "/usr/sbin",
    ])
  ) {
    const path = join(dir, "redis-server");
    if (dir !== "" && existsSync(path)) return path;
  }
  return undefined;
}

/**
 * Starts `redis-server` on 127.0.0.1 at a free port, without persistence
 * (no RDB snapshots, no AOF: the cache configuration, and nothing to fsync),
 * and waits until it answers PING (at most 10 s).
 */
export async function startRedis(): Promise<RedisServer> {
  const binary = redisServerPath();
  if (binary === undefined) {
    throw new Error(
      "redis-server is not installed (scripts/bench-report.sh installs Debian's redis-server)",
    );
  }
  const versionText = spawnSync(binary, ["--version"], { encoding: "utf8" }).stdout;
  const version = /v=(\S+)/.exec(versionText)?.[1] ?? versionText.trim();
  const port = await freePort();
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--protected-mode",
    "yes",
    "--daemonize",
    "no",
    "--loglevel",
    "warning",
  ];
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "inherit"] });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    })
  );
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (exited || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not answer on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    version,
    config: `redis-server ${args.join(" ").replace("--save  ", "--save '' ")}`,
    stop: async () => {
      if (!exited) child.kill("SIGTERM");
      await exit;
    },
  };
}
