/**
 * The `shm-cache` CLI's output formats: aligned tables, byte sizes, and the
 * Prometheus text exposition format.
 *
 * @module
 */

import type { CacheInfo } from "./inspect.ts";

/** Rows under a header, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** 1536 -> "1.5 KiB". */
export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/** A metric family: name, kind, help, and how to read it from a cache. */
interface Family {
  name: string;
  type: "counter" | "gauge";
  help: string;
  value: (info: CacheInfo) => number;
}

const counter = (name: string, help: string, value: (info: CacheInfo) => number): Family => ({
  name: `shm_cache_${name}_total`,
  type: "counter",
  help,
  value,
});
const gauge = (name: string, help: string, value: (info: CacheInfo) => number): Family => ({
  name: `shm_cache_${name}`,
  type: "gauge",
  help,
  value,
});

const ALL_HANDLES = "summed over every handle that ever had the cache open";

const FAMILIES: Family[] = [
  counter("hits", `Reads that found a live entry, ${ALL_HANDLES}.`, (i) => i.stats.hits),
  counter("misses", `Reads that found no live entry, ${ALL_HANDLES}.`, (i) => i.stats.misses),
  counter(
    "memo_hits",
    `Hits answered from a handle's decode memo, ${ALL_HANDLES}.`,
    (i) => i.stats.memoHits,
  ),
  counter(
    "read_timeouts",
    `Reads that gave up on a writer stuck beyond the lock timeout, ${ALL_HANDLES}.`,
    (i) => i.stats.readTimeouts,
  ),
  counter(
    "dropped_writes",
    `Writes dropped (lock held too long, or no room in a crowded run), ${ALL_HANDLES}.`,
    (i) => i.stats.droppedWrites,
  ),
  counter(
    "lock_timeouts",
    `Writer lock waits that ran out, ${ALL_HANDLES}.`,
    (i) => i.stats.lockTimeouts,
  ),
  counter(
    "unstored_results",
    `getOrSet results returned without being stored (too large, or not storable), ${ALL_HANDLES}.`,
    (i) => i.stats.unstoredResults,
  ),
  counter("sets", "Successful writes.", (i) => i.stats.sets),
  counter("deletes", "Entries removed by delete.", (i) => i.stats.deletes),
  counter("evictions", "Entries evicted to make room.", (i) => i.stats.evictions),
  counter("expirations", "Expired entries removed.", (i) => i.stats.expirations),
  counter("recoveries", "Writer locks taken over from a dead owner.", (i) => i.stats.recoveries),
  counter(
    "rebuilds",
    "Structure rebuilds after a crash mid-write or corruption.",
    (i) => i.stats.rebuilds,
  ),
  gauge("entries", "Entries stored now (expired ones count until removed).", (i) => i.size),
  gauge("capacity_entries", "Maximum number of entries.", (i) => i.capacity),
  gauge("handles", "Handles that have the cache open now.", (i) => i.handles),
  gauge("file_bytes", "Size of the cache file in bytes.", (i) => i.fileBytes),
  gauge(
    "lock_held",
    "1 while a process holds the writer lock.",
    (i) => i.lockOwnerPid !== 0 ? 1 : 0,
  ),
];

/** A label value in the exposition format: backslash, quote and newline escaped. */
function labelValue(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/**
 * The Prometheus text exposition format (version 0.0.4) for the caches:
 * each family once, with its HELP and TYPE, one sample per cache labelled
 * `cache`.
 */
export function prometheus(infos: CacheInfo[]): string {
  const lines: string[] = [];
  for (const f of FAMILIES) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const info of infos) {
      lines.push(`${f.name}{cache="${labelValue(info.name)}"} ${f.value(info)}`);
    }
  }
  return lines.join("\n") + "\n";
}
