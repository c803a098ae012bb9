/**
 * shm-cache against its peers, with mitata's measuring loop, under whichever
 * runtime runs this file:
 *
 * ```sh
 * bun run bench/peers_bench.ts            # writes bench/results/peers-bun.json
 * deno run -A bench/peers_bench.ts        # writes bench/results/peers-deno.json
 * ```
 *
 * Options: `--rounds N` (7), `--time-ms T` (mitata's time budget per
 * measurement, 100), `--contenders a,b` (all), `--out FILE`.
 *
 * Every contender gets the same keys and values: 10,000 ids whose keys
 * `"user:" + id` are 16 to 40 bytes, requested in one fixed Zipf (s = 0.99)
 * order, each key built per call; three value kinds (a 64-byte string, a
 * small object, a 1 KiB Uint8Array) under three key families of the same
 * length ("user:", "objt:", "blob:"), and "miss:" keys that are never
 * stored. Operations: get hit (each value kind), get miss, set overwrite
 * (each value kind), set insert of a new key and delete of a present key
 * (these two in batches of fresh keys, timed by hand inside mitata's loop,
 * so the stores keep their size).
 *
 * Method: a warm-up round, then `--rounds` rounds; in each, every
 * (operation, contender) pair is measured once by mitata's `measure`, the
 * contenders' order rotating from round to round. A round's figure is
 * mitata's p50 (median sample); the result is the median over rounds with
 * the spread (min to max), and every ratio is taken within a round, then
 * the median of those. Each benchmark closure is compiled on its own
 * (`new Function`), so every call site sees one contender only.
 *
 * The hit path of shm-cache is then taken apart step by step (key build,
 * key encode, the FFI call, the native lookup, the copy, the value decode)
 * with the library's own codec and native binding, plus a few bench-only
 * prototypes of cheaper steps, to say where a hit's time goes.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { rmSync } from "node:fs";
import process from "node:process";
import { do_not_optimize, measure } from "mitata";
import { SharedCache, type SharedCacheOptions } from "../mod.ts";
import { Codec, encodeKey, KEY_TAG_STRING } from "../lib/codec.ts";
import { Status } from "../lib/errors.ts";
import { loadNative } from "../lib/ffi/load.ts";
import type { NativeHandle } from "../lib/ffi/symbols.ts";
import {
  bytes1k,
  freshDir,
  makeIds,
  nowNs,
  numberArg,
  parseArgs,
  type RedisServer,
  redisServerPath,
  resultHeader,
  runtime,
  runtimeVersion,
  shuffled,
  SMALL_OBJECT,
  type Spread,
  spread,
  startRedis,
  STRING_64,
  thisCommand,
  writeResult,
  zipfStream,
} from "./_common.ts";
import {
  ALL_CONTENDERS,
  type Contender,
  type ContenderId,
  openContender,
  PIPELINE,
  SHM_GEOMETRY,
} from "./_contenders.ts";

const args = parseArgs();
const ROUNDS = numberArg(args, "rounds", 7);
const TIME_MS = numberArg(args, "time-ms", 100);
const OUT = args.get("out") ?? `peers-${runtime}.json`;
const WANTED = (args.get("contenders")?.split(",") ?? ALL_CONTENDERS) as ContenderId[];
for (const id of WANTED) {
  if (!ALL_CONTENDERS.includes(id)) {
    throw new RangeError(`unknown contender ${id}; known: ${ALL_CONTENDERS.join(", ")}`);
  }
}

/** Keys per family. */
const KEYS = 10_000;
const ZIPF_S = 0.99;
/** The Zipf stream's length (a power of two, cycled). */
const STREAM = 1 << 16;
/** Fresh keys per insert/delete batch, and batches before the pool repeats. */
const BATCH_SYNC = 1_000;
const BATCH_ASYNC = 200;
const INSERT_POOL = 8 * BATCH_SYNC;
const CAPACITY = 4 * KEYS;

const ids = makeIds(KEYS, 1);
const insertIds = makeIds(INSERT_POOL, 2, new Set(ids));
const stream = zipfStream(KEYS, ZIPF_S, STREAM, 3);
const BYTES_1K = bytes1k();

// deno-lint-ignore no-explicit-any
type AnyFn = (...a: any[]) => any;

// ---------------------------------------------------------------- the operations

/** One benchmarked operation; `body` is the call made per iteration on key expression `K`. */
interface Operation {
  id: string;
  label: string;
  kind: "loop" | "insert" | "delete";
  /** The expression per iteration, with `K` standing for the key and `s` for the contender. */
  call: string;
  prefix: string;
}

const OPERATIONS: Operation[] = [
  {
    id: "get-hit-string",
    label: "get hit, 64 B string",
    kind: "loop",
    call: "s.get(K)",
    prefix: "user:",
  },
  {
    id: "get-hit-object",
    label: "get hit, small object",
    kind: "loop",
    call: "s.getObject(K)",
    prefix: "objt:",
  },
  {
    id: "get-hit-bytes",
    label: "get hit, 1 KiB Uint8Array",
    kind: "loop",
    call: "s.getBytes(K)",
    prefix: "blob:",
  },
  { id: "get-miss", label: "get miss", kind: "loop", call: "s.get(K)", prefix: "miss:" },
  {
    id: "set-overwrite-string",
    label: "set overwrite, 64 B string",
    kind: "loop",
    call: "s.set(K, STRING_64)",
    prefix: "user:",
  },
  {
    id: "set-overwrite-object",
    label: "set overwrite, small object",
    kind: "loop",
    call: "s.setObject(K, OBJECT)",
    prefix: "objt:",
  },
  {
    id: "set-overwrite-bytes",
    label: "set overwrite, 1 KiB Uint8Array",
    kind: "loop",
    call: "s.setBytes(K, BYTES)",
    prefix: "blob:",
  },
  {
    id: "set-insert-string",
    label: "set insert (new key), 64 B string",
    kind: "insert",
    call: "s.set(K, STRING_64)",
    prefix: "user:",
  },
  {
    id: "delete",
    label: "delete (present key)",
    kind: "delete",
    call: "s.delete(K)",
    prefix: "user:",
  },
];

const context = {
  ids,
  insertIds,
  seq: stream,
  dno: do_not_optimize,
  now: nowNs,
  STRING_64,
  OBJECT: SMALL_OBJECT,
  BYTES: BYTES_1K,
};

/**
 * Compiles the benchmark function of `op` for contender `s`: its own code,
 * so the JIT sees one contender at each call site. Loop operations take the
 * next Zipf key per call; insert/delete ones time a batch and return ns/op.
 * A pipelining contender issues `s.pipeline` calls at once and awaits them
 * together, timed by hand like a batch (ns per call).
 */
function compile(op: Operation, s: Contender): AnyFn {
  const aw = s.async ? "await " : "";
  const fn = s.async ? "async " : "";
  const key = (expr: string) => `"${op.prefix}" + ${expr}`;
  let body: string;
  if (s.pipeline !== undefined) {
    body = pipelined(op, s.pipeline, key);
  } else if (op.kind === "loop") {
    body = `let i = 0;
      return ${fn}() => { i = (i + 1) & ${STREAM - 1}; dno(${aw}${
      op.call.replace("K", key("ids[seq[i]]"))
    }); };`;
  } else {
    const batch = s.async ? BATCH_ASYNC : BATCH_SYNC;
    const batches = Math.floor(INSERT_POOL / batch);
    const insert = `for (let j = 0; j < ${batch}; j++) ${aw}s.set(${
      key("insertIds[base + j]")
    }, STRING_64);`;
    const remove = `for (let j = 0; j < ${batch}; j++) ${aw}s.delete(${
      key("insertIds[base + j]")
    });`;
    body = `let b = 0;
      return ${fn}() => {
        const base = (b++ % ${batches}) * ${batch};
        ${op.kind === "delete" ? insert : ""}
        const t0 = now();
        ${op.kind === "insert" ? insert : remove}
        const t1 = now();
        ${op.kind === "insert" ? remove : ""}
        return (t1 - t0) / ${batch};
      };`;
  }
  const source =
    `"use strict"; const { ids, insertIds, seq, dno, now, STRING_64, OBJECT, BYTES } = ctx; ${body}`;
  return new Function("ctx", "s", source)(context, s);
}

/** The body of `compile` for a contender that batches `n` operations (`s.many`). */
function pipelined(op: Operation, n: number, key: (expr: string) => string): string {
  const call = /^s\.(\w+)\(K(?:, (\w+))?\)$/.exec(op.call);
  if (call === null) throw new Error(`cannot batch ${op.call}`);
  const [, method, value] = call;
  if (op.kind === "loop") {
    return `let i = 0;
      const keys = new Array(${n});
      return async () => {
        const t0 = now();
        for (let j = 0; j < ${n}; j++) { i = (i + 1) & ${STREAM - 1}; keys[j] = ${
      key("ids[seq[i]]")
    }; }
        dno(await s.many("${method}", keys, ${value ?? "undefined"}));
        return (now() - t0) / ${n};
      };`;
  }
  const batches = Math.floor(INSERT_POOL / n);
  return `let b = 0;
      const keys = new Array(${n});
      return async () => {
        const base = (b++ % ${batches}) * ${n};
        for (let j = 0; j < ${n}; j++) keys[j] = ${key("insertIds[base + j]")};
        ${op.kind === "delete" ? `await s.many("set", keys, STRING_64);` : ""}
        const t0 = now();
        await s.many("${op.kind === "insert" ? "set" : "delete"}", keys, STRING_64);
        const t1 = now();
        ${op.kind === "insert" ? `await s.many("delete", keys);` : ""}
        return (t1 - t0) / ${n};
      };`;
}

// ---------------------------------------------------------------- measuring

/** What one measurement keeps. */
interface Sample {
  p50: number;
  avg: number;
  p25: number;
  p75: number;
  samples: number;
  ticks: number;
}

let collect: (() => void) | false = false;

async function findCollector(): Promise<void> {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (runtime === "bun") {
    collect = () => g.Bun.gc(true);
    return;
  }
  try {
    // Without --expose-gc mitata would fall back to allocating 1 GiB per
    // measurement; V8's flag can be set at run time instead.
    const v8 = await import("node:v8");
    const vm = await import("node:vm");
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc");
    if (typeof gc === "function") collect = () => gc();
  } catch {
    collect = false;
  }
}

/** Per-call cost estimate (ns) from a short untimed-by-mitata run, to size mitata's batches. */
async function estimate(fn: AnyFn, async: boolean): Promise<number> {
  const n = async ? 20 : 200;
  const t0 = nowNs();
  for (let i = 0; i < n; i++) async ? await fn() : fn();
  return (nowNs() - t0) / n;
}

/** What a Sample keeps of mitata's statistics. */
function toSample(
  s: { p50: number; avg: number; p25: number; p75: number; samples: unknown[]; ticks: number },
): Sample {
  return {
    p50: s.p50,
    avg: s.avg,
    p25: s.p25,
    p75: s.p75,
    samples: s.samples.length,
    ticks: s.ticks,
  };
}

async function measureLoop(fn: AnyFn, async: boolean, timeMs: number): Promise<Sample> {
  const per = await estimate(fn, async);
  // Batches of about 200 µs, a multiple of mitata's unroll of 4.
  const batch = Math.max(4, Math.min(4096, Math.round(200_000 / Math.max(per, 1) / 4) * 4));
  const s = await measure(fn, {
    min_cpu_time: timeMs * 1e6,
    batch_samples: batch,
    min_samples: 12,
    gc: collect,
  } as Record<string, unknown>);
  return toSample(s);
}

async function measureBatch(fn: AnyFn, timeMs: number): Promise<Sample> {
  // mitata's manual mode: each sample is what the function returns (ns per
  // operation of one timed batch); the time budget counts real time.
  const s = await measure(function* () {
    yield { manual: fn, budget: "real" };
  }, { min_cpu_time: timeMs * 1e6, min_samples: 12, gc: collect } as Record<string, unknown>);
  return toSample(s);
}

// ---------------------------------------------------------------- set-up and checks

async function populate(s: Contender): Promise<void> {
  const order = shuffled(ids, 4);
  if (!s.async) {
    for (const id of order) {
      s.set("user:" + id, STRING_64);
      s.setObject("objt:" + id, SMALL_OBJECT as Record<string, unknown>);
      s.setBytes("blob:" + id, BYTES_1K);
    }
    return;
  }
  for (let i = 0; i < order.length; i += 500) {
    await Promise.all(
      order.slice(i, i + 500).flatMap((id) => [
        s.set("user:" + id, STRING_64),
        s.setObject("objt:" + id, SMALL_OBJECT as Record<string, unknown>),
        s.setBytes("blob:" + id, BYTES_1K),
      ]),
    );
  }
}

function sameBytes(a: unknown, b: Uint8Array): boolean {
  if (!(a instanceof Uint8Array) || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < b.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Fails loudly unless the contender returns what the benchmark assumes. */
async function check(s: Contender): Promise<void> {
  for (const r of [0, 1, 17, KEYS - 1]) {
    const id = ids[r];
    const str = await s.get("user:" + id);
    const obj = await s.getObject("objt:" + id);
    const bin = await s.getBytes("blob:" + id);
    const miss = await s.get("miss:" + id);
    const problems: string[] = [];
    if (str !== STRING_64) problems.push(`string hit returned ${JSON.stringify(str)}`);
    if (JSON.stringify(obj) !== JSON.stringify(SMALL_OBJECT)) {
      problems.push(`object hit returned ${JSON.stringify(obj)}`);
    }
    if (!sameBytes(bin, BYTES_1K)) problems.push(`bytes hit returned ${String(bin).slice(0, 40)}`);
    if (miss !== undefined && miss !== null) problems.push(`miss returned ${JSON.stringify(miss)}`);
    if (problems.length > 0) throw new Error(`${s.id}: ${problems.join("; ")}`);
  }
  for (const r of [0, 3]) {
    const key = "user:" + insertIds[r];
    await s.set(key, STRING_64);
    const got = await s.get(key);
    await s.delete(key);
    const gone = await s.get(key);
    if (got !== STRING_64 || (gone !== undefined && gone !== null)) {
      throw new Error(
        `${s.id}: insert/delete check failed (${JSON.stringify(got)}, ${JSON.stringify(gone)})`,
      );
    }
  }
}

// ---------------------------------------------------------------- the hit path, step by step

/** One step of the breakdown: a benchmark of that step alone. */
interface Step {
  id: string;
  label: string;
  fn: AnyFn;
  /** Bench-only prototypes of a cheaper step, not the library's code. */
  prototype?: boolean;
}

/** The decode memo's hit rate over the Zipf stream: memoHits / hits of one pass of `cache.get`. */
interface MemoRate {
  /** The first pass after open, the memo empty. */
  firstPass: number;
  /** The next pass, with no write in between: the memo's steady state. */
  warm: number;
}

/**
 * The steps of shm-cache's get and set, each alone, on the same Zipf key
 * stream, through the library's codec and its native binding. A second
 * native handle on the same region is opened here for the raw calls (the
 * cache's own handle is private), with the geometry `SharedCache.open`
 * passes (limits + 1 for the codec's tag byte), and bound to buffers of its
 * own (shmc_bind) like the library's, so the steps call shmc_get/shmc_put
 * exactly as `cache.get`/`cache.set` do. Its memo is bound empty: its
 * lookups always copy, and what a memo hit saves is measured by the two
 * `cache.get` steps, memo on and off.
 */
function hitPathSteps(dir: string): { steps: Step[]; memo: MemoRate; close: () => void } {
  const native = loadNative();
  const enc = new TextEncoder();
  const dirBytes = enc.encode(dir);
  const nameBytes = enc.encode("peers");
  const config = new Float64Array([
    CAPACITY,
    SHM_GEOMETRY.maxKeyBytes + 1,
    SHM_GEOMETRY.maxValueBytes + 1,
    0,
    500,
    -1, // codec: not given (the cache's, json when created)
    0, // on mismatch: fail
  ]);
  const status = new Int32Array(2);
  const err = new Uint8Array(512);
  const h = native.shmc_open(
    dirBytes,
    dirBytes.length,
    nameBytes,
    nameBytes.length,
    config,
    err,
    512,
    status,
  );
  if (h === null || h === 0) throw new Error(`hit path: shmc_open failed with status ${status[0]}`);
  const handle = h as NativeHandle;

  // Each bound buffer over an ArrayBuffer of its own, at a fixed address
  // (lib/cache.ts does the same; a small on-heap typed array may move).
  const keyBuf = new Uint8Array(new ArrayBuffer(SHM_GEOMETRY.maxKeyBytes + 1));
  // The library's codec, as SharedCache uses it: one buffer that the native
  // lookup copies into, decode reads from and shmc_put writes from.
  const codec = new Codec(SHM_GEOMETRY.maxValueBytes);
  const valBuf: Uint8Array = codec.buf;
  const valNode = Buffer.from(valBuf.buffer, valBuf.byteOffset, valBuf.byteLength);
  // shmc_get's report (8 u32, zig/src/exports.zig meta_len_min); no memo.
  const meta = new Uint32Array(new ArrayBuffer(32));
  const noMemo = new Uint32Array(new ArrayBuffer(24));
  const bound = native.shmc_bind(
    handle,
    keyBuf,
    keyBuf.length,
    valBuf,
    valBuf.length,
    meta,
    meta.length,
    noMemo,
    0,
  );
  if (bound !== 0) throw new Error(`hit path: shmc_bind failed with status ${-bound}`);
  // Every key encoded ahead, to call the native side without the encode.
  const encoded = ids.map((id) => {
    const b = new Uint8Array(SHM_GEOMETRY.maxKeyBytes + 1);
    return b.subarray(0, encodeKey("user:" + id, b, SHM_GEOMETRY.maxKeyBytes));
  });
  const lengths = encoded.map((b) => b.length);
  keyBuf.set(encoded[0]);
  const valueLength = native.shmc_get(handle, lengths[0], 1);
  if (codec.decode(valueLength) !== STRING_64) throw new Error("hit path: the raw lookup missed");
  // What shmc_put stores: the bound value buffer holds the encoded string
  // (the same bytes every lookup of a "user:" key copies in).
  const setLength = codec.encode(STRING_64);
  if (setLength !== valueLength) throw new Error("hit path: the encoded value differs in length");
  const valueCodec = new Codec(SHM_GEOMETRY.maxValueBytes);

  const open = (extra: Partial<SharedCacheOptions>) =>
    SharedCache.open("peers", { capacity: CAPACITY, ...SHM_GEOMETRY, dir, ...extra });
  const cache = open({});
  const cacheNoMemo = open({ decodeCacheBytes: 0 });
  const memo = memoRate(cache);

  const ctx = {
    ids,
    seq: stream,
    dno: do_not_optimize,
    native,
    handle,
    keyBuf,
    valNode,
    encoded,
    lengths,
    encodeKey,
    codec,
    valueCodec,
    setLength,
    STRING_64,
    KEY_TAG_STRING,
    TOO_LONG: 0xffff,
    maxKey: SHM_GEOMETRY.maxKeyBytes,
    extra: {
      // Never read here, but the native handle writes into it on every
      // hit: it must live as long as the steps do.
      meta,
      noMemo,
      td: new TextDecoder(),
      te: new TextEncoder(),
      keyPayload: keyBuf.subarray(1),
      cache,
      cacheNoMemo,
      encBuf: new Uint8Array(SHM_GEOMETRY.maxValueBytes + 1),
    } as Record<string, unknown>,
  };
  /** A step whose body sets `v`; `r` is the key's rank. The function returns `v` (for the checks). */
  const stepBody = (id: string, label: string, body: string, prototype = false): Step => {
    const source = `"use strict";
      const { ids, seq, dno, native, handle, keyBuf, valNode, encoded, lengths, encodeKey, codec,
              valueCodec, setLength, STRING_64, KEY_TAG_STRING, TOO_LONG, maxKey, extra } = ctx;
      let i = 0;
      return () => { i = (i + 1) & ${
      STREAM - 1
    }; const r = seq[i]; let v; ${body} dno(v); return v; };`;
    return { id, label, fn: new Function("ctx", source)(ctx), prototype };
  };
  const step = (id: string, label: string, expr: string, prototype = false) =>
    stepBody(id, label, `v = ${expr};`, prototype);
  // The raw native steps need the key in the bound key buffer. Rather than
  // a second FFI path (raw shmc_lookup through pointers resolved once) they
  // copy the pre-encoded key in, so they call shmc_get/shmc_put exactly as
  // the library does; that copy is measured alone ("key-copy") and the
  // breakdown subtracts it from "native-lookup" and "native-insert".
  const steps: Step[] = [
    step("key-build", 'key build: "user:" + id', `"user:" + ids[r]`),
    step(
      "key-build-encode",
      "key build + encodeKey (lib/codec.ts) into the bound key buffer",
      `encodeKey("user:" + ids[r], keyBuf, maxKey)`,
    ),
    step(
      "key-copy",
      "copy of the pre-encoded key into the bound key buffer (subtracted below)",
      `(keyBuf.set(encoded[r]), lengths[r])`,
    ),
    step(
      "ffi-call",
      "FFI call alone: shmc_get with an over-long key length (returns at once)",
      `native.shmc_get(handle, TOO_LONG, 1)`,
    ),
    stepBody(
      "native-lookup",
      "key copy + FFI + native lookup, no copy out (shmc_get, want_value 0)",
      `keyBuf.set(encoded[r]); v = native.shmc_get(handle, lengths[r], 0);`,
    ),
    stepBody(
      "native-lookup-copy",
      "key copy + FFI + native lookup + copy of the 65-byte value (shmc_get)",
      `keyBuf.set(encoded[r]); v = native.shmc_get(handle, lengths[r], 1);`,
    ),
    step(
      "decode",
      "decode of the 64-byte string (lib/codec.ts Codec#decode): what a memo miss pays",
      `codec.decode(65)`,
    ),
    step(
      "set-encode-value",
      "set: Codec#encode of the 64-byte string",
      `valueCodec.encode(STRING_64)`,
    ),
    step(
      "ffi-call-insert",
      "set: FFI call alone: shmc_put with an over-long key length (returns at once)",
      `native.shmc_put(handle, TOO_LONG, setLength, -1, 0)`,
    ),
    stepBody(
      "native-insert",
      "set: key copy + FFI + native insert (overwrite; shmc_put, value already encoded)",
      `keyBuf.set(encoded[r]); v = native.shmc_put(handle, lengths[r], setLength, -1, 0);`,
    ),
    // The whole get and set on SharedCaches of their own (same region),
    // without the contender wrapper the peer table goes through.
    step(
      "get-direct",
      "cache.get, called directly (decode memo on, the default)",
      `extra.cache.get("user:" + ids[r])`,
    ),
    step(
      "get-direct-nomemo",
      "cache.get, called directly, decodeCacheBytes: 0 (memo off)",
      `extra.cacheNoMemo.get("user:" + ids[r])`,
    ),
    step(
      "set-direct",
      "cache.set (overwrite), called directly",
      `extra.cache.set("user:" + ids[r], STRING_64)`,
    ),
    // Bench-only alternatives of single steps.
    step(
      "ref-key-first-read",
      "reference: key build + one charCodeAt (the first read of the key's characters)",
      `("user:" + ids[r]).charCodeAt(4)`,
      true,
    ),
    stepBody(
      "proto-key-encodeinto",
      "prototype: key build + TextEncoder.encodeInto instead of encodeKey's charCodeAt loop",
      `keyBuf[0] = KEY_TAG_STRING;
       v = extra.te.encodeInto("user:" + ids[r], extra.keyPayload).written + 1;`,
      true,
    ),
    stepBody(
      "proto-encode-value-loop",
      "prototype: set's value encode as a charCodeAt loop for ASCII (like encodeKey)",
      `const t = STRING_64, n = t.length, b = extra.encBuf;
       b[0] = 6;
       let j = 0;
       for (; j < n; j++) { const c = t.charCodeAt(j); if (c > 0x7f) break; b[j + 1] = c; }
       v = j === n ? n + 1 : -1;`,
      true,
    ),
    step(
      "proto-decode-utf8slice",
      "prototype: decode with node:buffer utf8Slice",
      `valNode.utf8Slice(1, 65)`,
      true,
    ),
    step(
      "proto-decode-latin1slice",
      "prototype: decode with node:buffer latin1Slice (ASCII only)",
      `valNode.latin1Slice(1, 65)`,
      true,
    ),
    step(
      "proto-decode-textdecoder",
      "reference: TextDecoder.decode of the 64 bytes",
      `extra.td.decode(valNode.subarray(1, 65))`,
      true,
    ),
  ];
  checkSteps(steps, keyBuf);
  return {
    steps,
    memo,
    close: () => {
      cache.close();
      cacheNoMemo.close();
      native.shmc_close(handle);
    },
  };
}

/** Every step must do what its label says, on many keys of the stream, or the run stops (`keyBuf`: the bound key buffer). */
function checkSteps(steps: Step[], keyBuf: Uint8Array): void {
  const expect: Record<string, (v: unknown) => boolean> = {
    "ffi-call": (v) => v === -Status.invalidArgument,
    "ffi-call-insert": (v) => v === -Status.invalidArgument,
    "native-lookup": (v) => v === 65,
    "native-lookup-copy": (v) => v === 65,
    "native-insert": (v) => v === 0,
    "set-direct": (v) => v === undefined,
    "proto-encode-value-loop": (v) => v === 65,
    "ref-key-first-read": (v) => v === ":".charCodeAt(0),
  };
  // The key prototype must write what encodeKey writes.
  const proto = steps.find((st) => st.id === "proto-key-encodeinto");
  if (proto !== undefined) {
    const known = new Set(ids.map((id) => "user:" + id));
    const mine = new Uint8Array(keyBuf.length);
    for (let n = 0; n < 2_000; n++) {
      const len = proto.fn() as number;
      const key = String.fromCharCode(...keyBuf.subarray(1, len));
      const same = known.has(key) && encodeKey(key, mine, keyBuf.length - 1) === len &&
        mine.subarray(0, len).every((x, j) => x === keyBuf[j]);
      if (!same) throw new Error(`hit path step ${proto.id} wrote ${JSON.stringify(key)}`);
    }
  }
  // The steps that yield a hit's value; decode and the prototypes read the
  // bound value buffer, which the lookups above leave holding the value.
  for (
    const id of [
      "decode",
      "get-direct",
      "get-direct-nomemo",
      "proto-decode-utf8slice",
      "proto-decode-latin1slice",
      "proto-decode-textdecoder",
    ]
  ) {
    expect[id] = (v) => v === STRING_64;
  }
  for (const st of steps) {
    const ok = expect[st.id];
    if (ok === undefined) continue;
    for (let n = 0; n < 2_000; n++) {
      const got = st.fn();
      if (!ok(got)) throw new Error(`hit path step ${st.id} returned ${JSON.stringify(got)}`);
    }
  }
}

/**
 * The memo's hit rate over the whole Zipf stream on `cache` (just opened,
 * its memo empty): a first pass, then a second one with no write in
 * between, from the deltas of stats().memoHits over stats().hits.
 */
function memoRate(cache: SharedCache): MemoRate {
  const pass = () => {
    const before = cache.stats();
    for (let i = 0; i < STREAM; i++) {
      if (cache.get("user:" + ids[stream[i]]) !== STRING_64) {
        throw new Error(`hit path: memo pass missed "user:${ids[stream[i]]}"`);
      }
    }
    const after = cache.stats();
    return (after.memoHits - before.memoHits) / (after.hits - before.hits);
  };
  const firstPass = pass();
  return { firstPass, warm: pass() };
}

// ---------------------------------------------------------------- the run

interface OpResult {
  op: string;
  label: string;
  contender: ContenderId;
  /** Median over rounds of each round's mitata p50, ns per operation. */
  ns: Spread;
  /** The same for mitata's (trimmed) average. */
  avgNs: Spread;
  opsPerSecond: number;
  samplesPerRound: number[];
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return items.slice(k).concat(items.slice(0, k));
}

function fmtNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e4) return `${(ns / 1e3).toFixed(1)} µs`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(1)} ns`;
}

async function main(): Promise<void> {
  const started = Date.now();
  await findCollector();
  const dir = freshDir();
  let redis: RedisServer | undefined;
  const contenders: Contender[] = [];
  let path: Awaited<ReturnType<typeof hitPathSteps>> | undefined;
  try {
    if (WANTED.includes("redis") || WANTED.includes("redis-pipelined")) {
      if (redisServerPath() === undefined) {
        // scripts/bench-report.sh installs it; scripts/bench.sh may run without.
        process.stderr.write("redis-server is not installed: Redis is left out of this run\n");
        for (const id of ["redis", "redis-pipelined"] as const) {
          if (WANTED.includes(id)) WANTED.splice(WANTED.indexOf(id), 1);
        }
      } else {
        redis = await startRedis();
      }
    }
    const setting = { dir, capacity: CAPACITY, redisUrl: redis?.url, redisVersion: redis?.version };
    for (const id of WANTED) {
      const s = await openContender(id, setting);
      await populate(s);
      await check(s);
      contenders.push(s);
    }
    process.stderr.write(`${runtime} ${runtimeVersion}; cache files in ${dir}\n`);
    for (const c of contenders) process.stderr.write(`  ${c.id} ${c.version}: ${c.config}\n`);
    path = WANTED.includes("shm-cache") ? await hitPathSteps(dir) : undefined;

    const loopbackRttUs = redis === undefined ? undefined : await loopbackRtt(redis.port);
    const compiled = new Map<string, AnyFn>();
    for (const op of OPERATIONS) {
      for (const s of contenders) compiled.set(`${op.id}|${s.id}`, compile(op, s));
    }

    const perRound = new Map<string, Sample[]>();
    const record = (key: string, sample: Sample) => {
      const list = perRound.get(key) ?? [];
      list.push(sample);
      perRound.set(key, list);
    };
    for (let round = 0; round <= ROUNDS; round++) {
      const warmUp = round === 0;
      const budget = warmUp ? TIME_MS / 2 : TIME_MS;
      const t0 = Date.now();
      for (const op of OPERATIONS) {
        for (const s of rotate(contenders, round)) {
          const fn = compiled.get(`${op.id}|${s.id}`)!;
          const sample = op.kind === "loop" && s.pipeline === undefined
            ? await measureLoop(fn, s.async, budget)
            : await measureBatch(fn, budget);
          if (!warmUp) record(`${op.id}|${s.id}`, sample);
        }
      }
      if (path !== undefined) {
        for (const st of rotate(path.steps, round)) {
          const sample = await measureLoop(st.fn, false, budget);
          if (!warmUp) record(`step|${st.id}`, sample);
        }
      }
      process.stderr.write(
        `${warmUp ? "warm-up round" : `round ${round}/${ROUNDS}`}: ${
          ((Date.now() - t0) / 1000).toFixed(1)
        } s\n`,
      );
    }

    // ------------------------------------------------------------ results
    const results: OpResult[] = [];
    for (const op of OPERATIONS) {
      for (const s of contenders) {
        const samples = perRound.get(`${op.id}|${s.id}`)!;
        const ns = spread(samples.map((x) => x.p50));
        results.push({
          op: op.id,
          label: op.label,
          contender: s.id,
          ns,
          avgNs: spread(samples.map((x) => x.avg)),
          opsPerSecond: 1e9 / ns.median,
          samplesPerRound: samples.map((x) => x.samples),
        });
      }
    }
    /** Per-round ratio a/b of p50 (how many times faster b's... see callers), median and spread. */
    const ratio = (op: string, slow: ContenderId, fast: ContenderId): Spread | undefined => {
      const a = perRound.get(`${op}|${slow}`);
      const b = perRound.get(`${op}|${fast}`);
      if (a === undefined || b === undefined) return undefined;
      return spread(a.map((x, i) => x.p50 / b[i].p50));
    };
    const ratios: Record<string, Spread | undefined> = {};
    for (const op of OPERATIONS) {
      for (const s of contenders) {
        if (s.id !== "shm-cache") {
          ratios[`${op.id}: ${s.id} / shm-cache`] = ratio(op.id, s.id, "shm-cache");
        }
      }
    }

    const steps = path?.steps.map((st) => ({
      id: st.id,
      label: st.label,
      prototype: st.prototype === true,
      ns: spread(perRound.get(`step|${st.id}`)!.map((x) => x.p50)),
    })) ?? [];
    const breakdown = steps.length > 0 ? hitBreakdown(steps, results, path?.memo) : undefined;

    const versions: Record<string, string> = {};
    for (const s of contenders) versions[s.id] = s.version;
    const data = {
      ...resultHeader("peers", thisCommand("bench/peers_bench.ts"), versions),
      method: {
        rounds: ROUNDS,
        timeMsPerMeasurement: TIME_MS,
        figure: "per round: mitata p50 (ns/op); reported: median over rounds, min and max",
        keys:
          `${KEYS} ids per family, keys "user:"/"objt:"/"blob:"/"miss:" + id, 16-40 bytes, built per call`,
        order:
          `Zipf s=${ZIPF_S}, a fixed stream of ${STREAM} ranks (seed 3), the same for every contender`,
        values: {
          string: "64 B ASCII",
          object: JSON.stringify(SMALL_OBJECT),
          bytes: "1024 B Uint8Array",
        },
        batches:
          `insert/delete: batches of ${BATCH_SYNC} (sync) or ${BATCH_ASYNC} (Redis) fresh keys, timed by hand in mitata's manual mode; Redis pipelined: ${PIPELINE} calls at once, timed by hand the same way`,
        elapsedSeconds: Math.round((Date.now() - started) / 1000),
      },
      contenders: contenders.map((s) => ({ id: s.id, version: s.version, config: s.config })),
      redis: redis ? { version: redis.version, config: redis.config, loopbackRttUs } : undefined,
      results,
      ratios,
      steps,
      breakdown,
    };
    writeResult(OUT, data);
    printTables(results, ratios, steps, breakdown);
  } finally {
    path?.close();
    for (const s of contenders) await s.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The loopback round trip to the Redis server without any client library:
 * PING over a raw node:net socket, one at a time (µs; median of 3 rounds of
 * 2,000). It bounds what any Redis client can do per awaited call.
 */
async function loopbackRtt(port: number): Promise<Spread> {
  const { createConnection } = await import("node:net");
  const socket = createConnection({ port, host: "127.0.0.1" });
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.setNoDelay(true);
  let pending: (() => void) | undefined;
  socket.on("data", () => {
    const p = pending;
    pending = undefined;
    p?.();
  });
  const rounds: number[] = [];
  for (let r = 0; r < 3; r++) {
    const n = 2_000;
    const t0 = nowNs();
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve) => {
        pending = resolve;
        socket.write("PING\r\n");
      });
    }
    rounds.push((nowNs() - t0) / n / 1e3);
  }
  socket.destroy();
  return spread(rounds);
}

/**
 * Where a string hit's and an overwrite's time goes, from the step
 * measurements (ns, medians of rounds). A hit is key build + key encode +
 * FFI call + native lookup + (memo miss share x (value copy + value
 * decode)) + remainder, with the memo's warm hit rate over the stream; the
 * same without the memo pays the copy and the decode on every hit.
 */
function hitBreakdown(
  steps: { id: string; ns: Spread }[],
  results: OpResult[],
  memo: MemoRate | undefined,
): Record<string, number> {
  const at = (id: string) => steps.find((s) => s.id === id)?.ns.median ?? NaN;
  const get =
    results.find((r) => r.op === "get-hit-string" && r.contender === "shm-cache")?.ns.median ?? NaN;
  const set =
    results.find((r) => r.op === "set-overwrite-string" && r.contender === "shm-cache")?.ns
      .median ?? NaN;
  const keyBuild = at("key-build");
  const keyEncode = at("key-build-encode") - keyBuild;
  // The raw native steps copy the pre-encoded key into the bound buffer
  // first (see hitPathSteps); that copy is not part of the library's call.
  const keyCopy = at("key-copy");
  const ffi = at("ffi-call");
  const lookup = at("native-lookup") - keyCopy - ffi;
  const copy = at("native-lookup-copy") - at("native-lookup");
  const decodeNs = at("decode");
  const memoHitRate = memo?.warm ?? NaN;
  const memoMissShare = 1 - memoHitRate;
  const memoMissCost = memoMissShare * (copy + decodeNs);
  const direct = at("get-direct");
  const directNoMemo = at("get-direct-nomemo");
  const shared = keyBuild + keyEncode + ffi + lookup;
  const valueEncode = at("set-encode-value");
  const insertFfi = at("ffi-call-insert");
  const insert = at("native-insert") - keyCopy - insertFfi;
  const setDirect = at("set-direct");
  return {
    getTotal: get,
    getDirect: direct,
    getDirectNoMemo: directNoMemo,
    keyBuild,
    keyEncode,
    keyCopy,
    ffiCall: ffi,
    nativeLookup: lookup,
    valueCopy: copy,
    valueDecode: decodeNs,
    memoHitRate,
    memoHitRateFirstPass: memo?.firstPass ?? NaN,
    memoMissShare,
    memoMissCost,
    remainder: direct - shared - memoMissCost,
    remainderNoMemo: directNoMemo - shared - copy - decodeNs,
    setTotal: set,
    setDirect,
    setValueEncode: valueEncode,
    setFfiCall: insertFfi,
    setNativeInsert: insert,
    setRemainder: setDirect - keyBuild - keyEncode - valueEncode - insertFfi - insert,
  };
}

function printTables(
  results: OpResult[],
  ratios: Record<string, Spread | undefined>,
  steps: { id: string; label: string; prototype: boolean; ns: Spread }[],
  breakdown: Record<string, number> | undefined,
): void {
  const out: string[] = [];
  out.push(
    `\npeers, ${runtime} ${runtimeVersion}: ns/op = median over ${ROUNDS} rounds of mitata's p50 (min-max)`,
  );
  for (const op of OPERATIONS) {
    out.push(`\n${op.label}`);
    const shm = results.find((r) => r.op === op.id && r.contender === "shm-cache");
    for (const r of results.filter((x) => x.op === op.id)) {
      const rt = ratios[`${op.id}: ${r.contender} / shm-cache`];
      const rel = r.contender === "shm-cache" || shm === undefined
        ? ""
        : `  shm-cache is ${rt!.median.toFixed(2)}x (${rt!.min.toFixed(2)}-${
          rt!.max.toFixed(2)
        }) its throughput`;
      out.push(
        `  ${r.contender.padEnd(10)} ${fmtNs(r.ns.median).padStart(10)}  (${fmtNs(r.ns.min)} - ${
          fmtNs(r.ns.max)
        })  ${(r.opsPerSecond / 1e6).toFixed(3).padStart(8)} Mops/s${rel}`,
      );
    }
  }
  if (steps.length > 0) {
    out.push(`\nshm-cache hit path, step by step (ns, median over rounds):`);
    for (const st of steps) {
      out.push(`  ${st.label.padEnd(84)} ${fmtNs(st.ns.median).padStart(10)}`);
    }
  }
  if (breakdown !== undefined) {
    const b = breakdown;
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const peer = (c: ContenderId) =>
      results.find((r) => r.op === "get-hit-string" && r.contender === c)?.ns.median;
    out.push(
      `\nhit path cost, memo on: get ${fmtNs(b.getDirect)} (called directly; ${
        fmtNs(b.getTotal)
      } through the peer wrapper) = key build ${fmtNs(b.keyBuild)} + key encode ${
        fmtNs(b.keyEncode)
      } + FFI call ${fmtNs(b.ffiCall)} + native lookup ${fmtNs(b.nativeLookup)} + memo misses ${
        pct(b.memoMissShare)
      } x (value copy ${fmtNs(b.valueCopy)} + value decode ${fmtNs(b.valueDecode)}) = ${
        fmtNs(b.memoMissCost)
      } + remainder ${fmtNs(b.remainder)}`,
      `hit path cost, memo off: get ${
        fmtNs(b.getDirectNoMemo)
      } = the same up to the native lookup + value copy ${fmtNs(b.valueCopy)} + value decode ${
        fmtNs(b.valueDecode)
      } + remainder ${fmtNs(b.remainderNoMemo)}`,
      `decode memo hit rate over the Zipf stream: ${pct(b.memoHitRate)} once warm (${
        pct(b.memoHitRateFirstPass)
      } on the first pass after open); the remainders are what the steps cost together and not apart (method layers, the memo's bookkeeping, garbage)`,
    );
    const map = peer("Map"), lmdb = peer("lmdb");
    const vs = (ns: number) =>
      [
        lmdb === undefined ? "" : `lmdb ${(lmdb / ns).toFixed(2)}x its throughput`,
        map === undefined ? "" : `${(ns / map).toFixed(2)}x Map's time`,
      ].filter((x) => x !== "").join(", ");
    if (map !== undefined || lmdb !== undefined) {
      out.push(
        `direct gets against the peers (peer figures through the wrapper): memo on ${
          vs(b.getDirect)
        }; memo off ${vs(b.getDirectNoMemo)}`,
      );
    }
    out.push(
      `set cost: set ${fmtNs(b.setDirect)} (called directly; ${
        fmtNs(b.setTotal)
      } through the peer wrapper) = key build+encode ${
        fmtNs(b.keyBuild + b.keyEncode)
      } + value encode ${fmtNs(b.setValueEncode)} + FFI call ${
        fmtNs(b.setFfiCall)
      } + native insert ${fmtNs(b.setNativeInsert)} + remainder ${fmtNs(b.setRemainder)}`,
    );
  }
  console.log(out.join("\n"));
}

await main();
