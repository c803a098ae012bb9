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
 *    median (and range) over rounds printed at the end.
 * 2. What the exactness check costs a set: encoding the same objects with
 *    the strict JSON codec against bare `JSON.stringify`, and with the
 *    structured codec (plain data, and data with a Date and a Map).
 * 3. What lone-surrogate support costs well-formed strings: the key and
 *    string-value encodings against `encodeInto` alone, as before.
 *
 * @module
 */

import { bench, do_not_optimize, measure, run, summary } from "mitata";
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
const times = new Map<string, number[]>(hits.map(([name]) => [name, []]));
const ratios = new Map<string, number[]>(hits.map(([name]) => [name, []]));
for (let round = 0; round <= ROUNDS; round++) {
  const mapNs = new Map<string, number>();
  for (const [name, fn] of hits) {
    const stats = await measure(() => do_not_optimize(fn()), { min_cpu_time: 100e6 });
    mapNs.set(name, stats.avg);
  }
  if (round === 0) continue; // warm-up
  const floor = mapNs.get("Map.get (floor)")!;
  for (const [name] of hits) {
    times.get(name)!.push(mapNs.get(name)!);
    ratios.get(name)!.push(mapNs.get(name)! / floor);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
const runtime = g.Bun ? `Bun ${g.Bun.version}` : `Deno ${g.Deno?.version.deno}`;
console.log(`\nobject hit, key built per call (${runtime}; ${ROUNDS} rounds, median (min-max)):`);
console.log("| contender | time | time / Map.get |\n| --- | ---: | ---: |");
for (const [name] of hits) {
  const r = ratios.get(name)!;
  const t = times.get(name)!;
  console.log(
    `| ${name} | ${median(t).toFixed(0)} ns | ${median(r).toFixed(2)}x (${
      Math.min(...r).toFixed(2)
    }x-${Math.max(...r).toFixed(2)}x) |`,
  );
}
console.log();

const jsonCodec = new Codec(1024, "json");
const structuredCodec = new Codec(1024, "structured");
const rich = objects.map((o) => ({ ...o, created: new Date(o.id), seen: new Map([["x", 1]]) }));
summary(() => {
  bench("encode object: JSON.stringify (before)", () => {
    const text = JSON.stringify(objects[at = at + 1 === N ? 0 : at + 1]);
    return do_not_optimize(jsonCodec.buf.write(text, 1));
  });
  bench(
    "encode object: json codec (checked)",
    () => do_not_optimize(jsonCodec.encode(objects[at = at + 1 === N ? 0 : at + 1])),
  );
  bench(
    "encode object: structured codec, plain data",
    () => do_not_optimize(structuredCodec.encode(objects[at = at + 1 === N ? 0 : at + 1])),
  );
  bench(
    "encode object: structured codec, with Date and Map",
    () => do_not_optimize(structuredCodec.encode(rich[at = at + 1 === N ? 0 : at + 1])),
  );
});

const encoder = new TextEncoder();
const keyBuf = new Uint8Array(65);
const wideKeys = keys.map((k) => `${k}:été`);
const strings = keys.map((k) => `value of ${k}, señor`);
summary(() => {
  bench("non-ASCII key: encodeInto alone (before)", () => {
    const k = wideKeys[at = at + 1 === N ? 0 : at + 1];
    return do_not_optimize(encoder.encodeInto(k, keyBuf.subarray(1)).written);
  });
  bench(
    "non-ASCII key: encodeKey (checks isWellFormed)",
    () => do_not_optimize(encodeKey(wideKeys[at = at + 1 === N ? 0 : at + 1], keyBuf, 64)),
  );
  bench("string value: encodeInto alone (before)", () => {
    const s = strings[at = at + 1 === N ? 0 : at + 1];
    return do_not_optimize(encoder.encodeInto(s, jsonCodec.buf.subarray(1)).written);
  });
  bench(
    "string value: codec (checks isWellFormed)",
    () => do_not_optimize(jsonCodec.encode(strings[at = at + 1 === N ? 0 : at + 1])),
  );
});

await run();
for (const cache of Object.values(shared)) cache.close();
SharedCache.destroy("bench-json", { dir });
SharedCache.destroy("bench-structured", { dir });
lmdb.close();
rmSync(dir, { recursive: true, force: true });
