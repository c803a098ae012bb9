/**
 * Object hits and the cost of exactness (issue 11), in one run per runtime:
 *
 * ```sh
 * bun run bench/codec_bench.ts
 * deno run -A bench/codec_bench.ts
 * ```
 *
 * 1. A repeated hit on 1,000 small objects (6 fields, about 110 bytes of
 *    JSON), round-robin, the key built per call (`"user:" + id`, as
 *    bench/peers_bench.ts does): the in-process `Map.get` (the floor),
 *    lru-cache, lmdb-js (`get`, msgpack values), and SharedCache with each
 *    codec, with and without `immutable: true`. Measured in interleaved
 *    rounds; each contender's time over the Map's in the same round, the
 *    median (and range) over rounds.
 * 2. What the exactness check costs a set: encoding the same objects with
 *    the strict JSON codec against bare `JSON.stringify` (what the codec did
 *    before), and with the structured codec (plain data, and data with a
 *    Date and a Map).
 * 3. What lone-surrogate support costs well-formed strings: the key
 *    encoding against a copy of the function as it was before, and the
 *    string-value encoding against `encodeInto` alone (what it was before).
 *    ASCII keys take the unchanged loop and are not measured.
 *
 * Tables 2 and 3 use the same interleaved rounds, against the first row.
 *
 * @module
 */

import { do_not_optimize, measure } from "mitata";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LRUCache } from "lru-cache";
import { open } from "lmdb";
import { SharedCache } from "../mod.ts";
import { Codec, encodeKey } from "../lib/codec.ts";

const N = 1000;
const keys = Array.from({ length: N }, (_, i) => `user:${i}`);
const objects = keys.map((_, i) => ({
  id: i,
  name: `User ${i}`,
  email: `user${i}@example.com`,
  active: i % 2 === 0,
  tags: ["a", "b"],
  score: i * 1.5,
}));
const dir = mkdtempSync(join(tmpdir(), "shmc-codec-bench-"));

const map = new Map<string, unknown>();
const lru = new LRUCache<string, object>({ max: N * 2 });
const lmdb = open({ path: join(dir, "lmdb"), noSync: true, compression: false });
const geometry = { capacity: N * 2, maxKeyBytes: 64, maxValueBytes: 1024, dir };
const shared = {
  json: SharedCache.open("bench-json", geometry),
  jsonImmutable: SharedCache.open("bench-json", { ...geometry, immutable: true }),
  structured: SharedCache.open("bench-structured", { ...geometry, codec: "structured" }),
  structuredImmutable: SharedCache.open("bench-structured", {
    ...geometry,
    codec: "structured",
    immutable: true,
  }),
};
for (let i = 0; i < N; i++) {
  map.set(keys[i], objects[i]);
  lru.set(keys[i], objects[i]);
  lmdb.putSync(keys[i], objects[i]);
  shared.json.set(keys[i], objects[i]);
  shared.structured.set(keys[i], objects[i]);
}

let at = 0;
function nextId(): number {
  return at = at + 1 === N ? 0 : at + 1;
}

const hits: [string, () => unknown][] = [
  ["Map.get (floor)", () => map.get("user:" + nextId())],
  ["lru-cache", () => lru.get("user:" + nextId())],
  ["lmdb-js get", () => lmdb.get("user:" + nextId())],
  ["shm json", () => shared.json.get("user:" + nextId())],
  ["shm json immutable", () => shared.jsonImmutable.get("user:" + nextId())],
  ["shm structured", () => shared.structured.get("user:" + nextId())],
  ["shm structured immutable", () => shared.structuredImmutable.get("user:" + nextId())],
];
const ROUNDS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
const runtime = g.Bun ? `Bun ${g.Bun.version}` : `Deno ${g.Deno?.version.deno}`;

/**
 * Measures `contenders` in interleaved rounds (one warm-up round first) and
 * prints each one's median time and its time over the first contender's in
 * the same round: median (min-max) over the rounds.
 */
async function rounds(title: string, contenders: [string, () => unknown][]): Promise<void> {
  const times = contenders.map(() => [] as number[]);
  const ratios = contenders.map(() => [] as number[]);
  for (let round = 0; round <= ROUNDS; round++) {
    const ns: number[] = [];
    for (const [, fn] of contenders) {
      ns.push((await measure(() => do_not_optimize(fn()), { min_cpu_time: 100e6 })).avg);
    }
    if (round === 0) continue;
    ns.forEach((t, i) => {
      times[i].push(t);
      ratios[i].push(t / ns[0]);
    });
  }
  console.log(`\n${title} (${runtime}; ${ROUNDS} rounds, median (min-max)):`);
  console.log(`| | time | time / ${contenders[0][0]} |\n| --- | ---: | ---: |`);
  contenders.forEach(([name], i) => {
    const r = ratios[i];
    const range = `${Math.min(...r).toFixed(2)}x-${Math.max(...r).toFixed(2)}x`;
    console.log(
      `| ${name} | ${median(times[i]).toFixed(0)} ns | ${median(r).toFixed(2)}x (${range}) |`,
    );
  });
}

await rounds("object hit, key built per call", hits);

const jsonCodec = new Codec(1024, "json");
const structuredCodec = new Codec(1024, "structured");
const rich = objects.map((o) => ({ ...o, created: new Date(o.id), seen: new Map([["x", 1]]) }));
await rounds("encode a small object (what set does before the FFI call)", [
  [
    "JSON.stringify + write (before)",
    () => jsonCodec.buf.write(JSON.stringify(objects[nextId()]), 1),
  ],
  ["json codec (checked)", () => jsonCodec.encode(objects[nextId()])],
  ["structured codec, plain data", () => structuredCodec.encode(objects[nextId()])],
  ["structured codec, with a Date and a Map", () => structuredCodec.encode(rich[nextId()])],
]);

const encoder = new TextEncoder();
const keyBuf = new Uint8Array(65);
const wideKeys = keys.map((k) => `${k}:été`);
const strings = keys.map((k) => `value of ${k}, señor`);
const valueView = jsonCodec.buf.subarray(1);
/** encodeKey for a string as it was before lone surrogates were kept (61d844d). */
function encodeKeyBefore(key: string, buf: Uint8Array, limit: number): number {
  buf[0] = 0x73;
  const n = key.length;
  if (n <= limit) {
    let flat = key;
    if (g.Bun === undefined) {
      const t = key.trimEnd();
      if (t.length === n) flat = t;
    }
    let i = 0;
    for (; i < n; i++) {
      const ch = flat.charCodeAt(i);
      if (ch > 0x7f) break;
      buf[i + 1] = ch;
    }
    if (i === n) return n + 1;
  }
  if (n > limit) return -1;
  const { read, written } = encoder.encodeInto(key, buf.subarray(1, limit + 1));
  return read === n ? written + 1 : -1;
}

await rounds("a well-formed non-ASCII key", [
  ["encodeKey before", () => encodeKeyBefore(wideKeys[nextId()], keyBuf, 64)],
  ["encodeKey (checks isWellFormed)", () => encodeKey(wideKeys[nextId()], keyBuf, 64)],
]);
await rounds("a well-formed non-ASCII string value", [
  ["encodeInto alone (before)", () => encoder.encodeInto(strings[nextId()], valueView).written],
  ["codec (checks isWellFormed)", () => jsonCodec.encode(strings[nextId()])],
]);
console.log();
for (const cache of Object.values(shared)) cache.close();
SharedCache.destroy("bench-json", { dir });
SharedCache.destroy("bench-structured", { dir });
lmdb.close();
rmSync(dir, { recursive: true, force: true });
