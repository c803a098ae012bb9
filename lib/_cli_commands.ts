/**
 * The `shm-cache` CLI's commands. Each takes its parsed arguments and an
 * output, and returns the exit code (0 ok, 1 failed); errors it does not
 * handle are reported by `cli.ts`. None needs the cache's geometry: `ls`
 * and `stats` inspect without opening a handle, the others attach with
 * `SharedCache.open(name, { dir })`.
 *
 * @module
 */

import { inspect, isDeepStrictEqual } from "node:util";
import { SharedCache } from "./cache.ts";
import { CacheError } from "./errors.ts";
import { cacheDirectory, type CacheInfo, inspectCache, listCaches } from "./inspect.ts";
import { type CommandSpec, type Parsed, UsageError } from "./_cli_args.ts";
import { bytes, prometheus, table } from "./_cli_format.ts";

/** Where a command writes: lines to stdout and to stderr. */
export interface Output {
  /** Writes a line (or lines) of results, to stdout by default. */
  out(text: string): void;
  /** Writes a line (or lines) of diagnostics, to stderr by default. */
  err(text: string): void;
}

/** A command: its spec and what it does. */
export interface Command {
  spec: CommandSpec;
  run(parsed: Parsed, io: Output): number;
}

const DIR = {
  type: "string",
  value: "DIR",
  description: "the cache directory (default: /dev/shm/shm-cache-<uid>)",
} as const;
const JSON_OPT = { type: "boolean", description: "print JSON" } as const;

function dirOf(parsed: Parsed): { dir?: string } {
  const dir = parsed.values.dir;
  return typeof dir === "string" ? { dir } : {};
}

function lockText(info: CacheInfo): string {
  if (info.lockOwnerPid === 0) return "-";
  return info.lockOwnerAlive ? `pid ${info.lockOwnerPid}` : `pid ${info.lockOwnerPid} (dead)`;
}

function errorJson(e: unknown): { code: string; message: string } {
  return e instanceof CacheError
    ? { code: e.code, message: e.message }
    : { code: (e as Error).name, message: String((e as Error).message ?? e) };
}

const ls: Command = {
  spec: {
    name: "ls",
    summary:
      "List every cache in the directory: file size, entries, geometry, open handles and the writer lock's owner.",
    args: [],
    options: { dir: DIR, json: JSON_OPT },
    details:
      "Reads each cache without opening a handle on it (it is not counted among the handles).\n" +
      "LOCK is the PID recorded by the writer lock's owner, '(dead)' when that process is gone.\n" +
      "Exit code 1 when --dir names a directory that does not exist (a missing default one lists none).",
  },
  run(parsed, io) {
    const options = dirOf(parsed);
    const path = cacheDirectory(options);
    // A missing default directory only means no cache was made yet; a
    // missing --dir is most likely a typo, which "no caches" would hide.
    if (path === undefined && options.dir !== undefined) {
      throw new CacheError("NotFound", `directory ${options.dir} does not exist`);
    }
    type Row = { name: string; info?: CacheInfo; error?: { code: string; message: string } };
    const rows = (path === undefined ? [] : listCaches(options)).flatMap((name): Row[] => {
      try {
        return [{ name, info: inspectCache(name, options) }];
      } catch (e) {
        // Destroyed since the listing, or not created yet: not a cache now.
        if (e instanceof CacheError && e.code === "NotFound") return [];
        return [{ name, error: errorJson(e) }];
      }
    });
    if (parsed.values.json) {
      const json = rows.map((r) => r.info ?? { name: r.name, error: r.error });
      io.out(JSON.stringify(json, null, 2));
      return 0;
    }
    if (rows.length === 0) {
      io.err(`no caches in ${path ?? "the default directory"}`);
      return 0;
    }
    const header = [
      "NAME",
      "FILE",
      "ENTRIES",
      "CAPACITY",
      "KEY",
      "VALUE",
      "TTL",
      "HANDLES",
      "LOCK",
    ];
    io.out(table(
      header,
      rows.map(({ name, info }) =>
        info
          ? [
            name,
            bytes(info.fileBytes),
            String(info.size),
            String(info.capacity),
            String(info.maxKeyBytes),
            String(info.maxValueBytes),
            info.ttlMs === 0 ? "-" : `${info.ttlMs}ms`,
            String(info.handles),
            lockText(info),
          ]
          : [name, ...header.slice(1).map(() => "?")]
      ),
    ));
    // Caches that could not be read: why, under the table.
    for (const { name, error } of rows) {
      if (error) io.out(`${name}: ${error.code}: ${error.message}`);
    }
    return 0;
  },
};

const stats: Command = {
  spec: {
    name: "stats",
    summary:
      "Print a cache's counters, summed over every handle that has it open (and closed ones).",
    args: ["NAME..."],
    options: {
      dir: DIR,
      json: { type: "boolean", description: "print JSON (an array when several names are given)" },
      prometheus: { type: "boolean", description: "print the Prometheus text exposition format" },
    },
    details:
      "Hits, misses, memo hits, read timeouts, dropped writes, lock timeouts and unstored getOrSet\n" +
      "results are counted by each handle in a cache line of its own and summed here; the other counters are the cache's.",
  },
  run(parsed, io) {
    if (parsed.values.json && parsed.values.prometheus) {
      throw new UsageError("--json and --prometheus exclude each other");
    }
    // Each cache once: a repeated name would repeat its Prometheus series,
    // which a scraper rejects as duplicate samples.
    const names = [...new Set(parsed.args)];
    const infos = names.map((name) => inspectCache(name, dirOf(parsed)));
    if (parsed.values.prometheus) {
      io.out(prometheus(infos).trimEnd());
      return 0;
    }
    if (parsed.values.json) {
      const flat = infos.map(({ stats, ...info }) => ({ ...info, ...stats }));
      io.out(JSON.stringify(flat.length === 1 ? flat[0] : flat, null, 2));
      return 0;
    }
    io.out(infos.map(statsText).join("\n\n"));
    return 0;
  },
};

function statsText(info: CacheInfo): string {
  const s = info.stats;
  const pids = info.handlePids.length > 0 ? ` (pids ${info.handlePids.join(", ")})` : "";
  const rows: Array<[string, string]> = [
    ["cache", info.name],
    ["handles", `${info.handles}${pids}`],
    ["entries", `${info.size} of ${info.capacity}`],
    ["hits", String(s.hits)],
    ["misses", String(s.misses)],
    ["memoHits", String(s.memoHits)],
    ["sets", String(s.sets)],
    ["deletes", String(s.deletes)],
    ["evictions", String(s.evictions)],
    ["expirations", String(s.expirations)],
    ["recoveries", String(s.recoveries)],
    ["rebuilds", String(s.rebuilds)],
    ["readTimeouts", String(s.readTimeouts)],
    ["droppedWrites", String(s.droppedWrites)],
    ["lockTimeouts", String(s.lockTimeouts)],
    ["unstoredResults", String(s.unstoredResults)],
    ["lockOwner", lockText(info)],
  ];
  return rows.map(([k, v]) => `${k.padEnd(16)}${v}`).join("\n");
}

function hexBytes(text: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})+$/.test(text)) {
    throw new UsageError(`--hex needs an even number of hex digits, got ${JSON.stringify(text)}`);
  }
  return Uint8Array.from(text.match(/../g)!, (h) => parseInt(h, 16));
}

/** The value's JSON text, or undefined when JSON would change it (a Map, NaN, a bigint...). */
function exactJson(value: unknown): string | undefined {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return undefined; // a bigint, or a cycle (codec: "structured")
  }
  return text !== undefined && isDeepStrictEqual(JSON.parse(text), value) ? text : undefined;
}

function show(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) {
    return Array.from(value, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  // JSON where it says the value exactly; else inspect, which a structured
  // cache's Map, Set, Date or NaN need (JSON would print a Map as {}).
  return exactJson(value) ??
    inspect(value, { depth: Infinity, maxArrayLength: Infinity, maxStringLength: Infinity });
}

const get: Command = {
  spec: {
    name: "get",
    summary: "Print the value stored under KEY (a string, or bytes with --hex).",
    args: ["NAME", "KEY"],
    options: {
      dir: DIR,
      hex: { type: "boolean", description: "KEY is hex-encoded bytes (a Uint8Array key)" },
      json: {
        type: "boolean",
        description: "print the value as JSON (strings quoted); exit 1 if JSON cannot hold it",
      },
    },
    details:
      "Strings print as they are, bytes as hex, other values as JSON where JSON holds them exactly,\n" +
      "else as the runtime inspects them (a Map, a Date, NaN). Exit code 1 on a miss.\n" +
      "The read counts as a hit or miss of a short-lived handle.",
  },
  run(parsed, io) {
    const [name, keyText] = parsed.args;
    const key = parsed.values.hex ? hexBytes(keyText) : keyText;
    using cache = SharedCache.open(name, dirOf(parsed));
    if (!cache.has(key)) {
      io.err(`shm-cache: no entry under ${JSON.stringify(keyText)} in cache ${name}`);
      return 1;
    }
    const value = cache.get(key);
    if (!parsed.values.json) {
      io.out(show(value));
      return 0;
    }
    const text = exactJson(value);
    if (text === undefined) {
      io.err(
        `shm-cache: the value under ${JSON.stringify(keyText)} is not JSON data: ${show(value)}`,
      );
      return 1;
    }
    io.out(text);
    return 0;
  },
};

const verify: Command = {
  spec: {
    name: "verify",
    summary: "Check every structural invariant of a cache; with --repair, rebuild a damaged one.",
    args: ["NAME"],
    options: {
      dir: DIR,
      repair: { type: "boolean", description: "rebuild the structure from its complete entries" },
      json: JSON_OPT,
    },
    details: "Exit code 0 when the cache is sound (after the repair, with --repair), 1 when not.",
  },
  run(parsed, io) {
    const [name] = parsed.args;
    using cache = SharedCache.open(name, dirOf(parsed));
    const result = cache.verify({ repair: parsed.values.repair === true });
    if (parsed.values.json) {
      io.out(JSON.stringify(result, null, 2));
    } else {
      for (const p of result.problems) io.out(p);
      if (result.repaired) io.out(result.ok ? "repaired" : "repair failed");
      else io.out(result.ok ? "ok" : `${result.problems.length} problem(s); --repair rebuilds`);
    }
    return result.ok ? 0 : 1;
  },
};

const clear: Command = {
  spec: {
    name: "clear",
    summary: "Remove every entry of a cache (its handles stay open and see it empty).",
    args: ["NAME"],
    options: { dir: DIR },
    details: "",
  },
  run(parsed, io) {
    const [name] = parsed.args;
    using cache = SharedCache.open(name, dirOf(parsed));
    const before = cache.size;
    cache.clear();
    io.out(`cleared ${before} entries from ${name}`);
    return 0;
  },
};

const destroy: Command = {
  spec: {
    name: "destroy",
    summary:
      "Remove a cache's file. Handles open in other processes move to a new region at their next operation.",
    args: ["NAME"],
    options: { dir: DIR },
    details: "Exit code 1 when there is no such cache.",
  },
  run(parsed, io) {
    const [name] = parsed.args;
    const options = dirOf(parsed);
    let handles = 0;
    try {
      handles = inspectCache(name, options).handles;
    } catch (e) {
      // A damaged file is what destroy is for; only a missing one is an
      // error (a file a creator never sized is NotFound to inspect, yet there).
      const missing = e instanceof CacheError && e.code === "NotFound";
      if (missing && !listCaches(options).includes(name)) throw e;
    }
    SharedCache.destroy(name, options);
    const note = handles > 0
      ? ` (${handles} open handle(s) move to a new region at their next operation)`
      : "";
    io.out(`destroyed ${name}${note}`);
    return 0;
  },
};

/** Every command, by name. */
export const COMMANDS: Record<string, Command> = { ls, stats, get, verify, clear, destroy };
