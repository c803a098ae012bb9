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
import { SharedCache } from "../mod.ts";
import { Codec, encodeKey } from "../lib/codec.ts";
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
 */
function compile(op: Operation, s: Contender): AnyFn {
  const aw = s.async ? "await " : "";
  const fn = s.async ? "async " : "";
  const key = (expr: string) => `"${op.prefix}" + ${expr}`;
  let body: string;
  if (op.kind === "loop") {
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
  return {
    p50: s.p50,
    avg: s.avg,
    p25: s.p25,
    p75: s.p75,
    samples: s.samples.length,
    ticks: s.ticks,
  };
}

async function measureBatch(fn: AnyFn, timeMs: number): Promise<Sample> {
  // mitata's manual mode: each sample is what the function returns (ns per
  // operation of one timed batch); the time budget counts real time.
  const s = await measure(function* () {
    yield { manual: fn, budget: "real" };
  }, { min_cpu_time: timeMs * 1e6, min_samples: 12, gc: collect } as Record<string, unknown>);
  return {
    p50: s.p50,
    avg: s.avg,
    p25: s.p25,
    p75: s.p75,
    samples: s.samples.length,
    ticks: s.ticks,
  };
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

/**
 * The steps of shm-cache's get and set, each alone, on the same Zipf key
 * stream, through the library's codec and its native binding. A second
 * native handle on the same region is opened here for the raw calls (the
 * cache's own handle is private), with the geometry `SharedCache.open`
 * passes (limits + 1 for the codec's tag byte).
 */
async function hitPathSteps(dir: string): Promise<{ steps: Step[]; close: () => void }> {
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

  const keyBuf = new Uint8Array(SHM_GEOMETRY.maxKeyBytes + 1);
  // The library's codec, as SharedCache uses it: one buffer that the native
  // lookup copies into and decode reads from.
  const codec = new Codec(SHM_GEOMETRY.maxValueBytes);
  const valBuf: Uint8Array = codec.buf;
  const valNode = Buffer.from(valBuf.buffer, valBuf.byteOffset, valBuf.byteLength);
  // Every key encoded ahead, to call the native side without the encode.
  const encoded = ids.map((id) => {
    const b = new Uint8Array(SHM_GEOMETRY.maxKeyBytes + 1);
    return b.subarray(0, encodeKey("user:" + id, b, SHM_GEOMETRY.maxKeyBytes));
  });
  const lengths = encoded.map((b) => b.length);
  const valueLength = native.shmc_lookup(handle, encoded[0], lengths[0], valBuf, valBuf.length);
  if (codec.decode(valueLength) !== STRING_64) throw new Error("hit path: the raw lookup missed");
  const setCodec = new Codec(SHM_GEOMETRY.maxValueBytes);
  const setBuf: Uint8Array = setCodec.buf;
  const setLength = setCodec.encode(STRING_64);
  const valueCodec = new Codec(SHM_GEOMETRY.maxValueBytes);

  const ctx = {
    ids,
    seq: stream,
    dno: do_not_optimize,
    native,
    handle,
    keyBuf,
    valBuf,
    valNode,
    encoded,
    lengths,
    encodeKey,
    codec,
    valueCodec,
    setBuf,
    setLength,
    STRING_64,
    TOO_LONG: 0xffff,
    maxKey: SHM_GEOMETRY.maxKeyBytes,
    extra: {
      td: new TextDecoder(),
      cache: SharedCache.open("peers", { capacity: CAPACITY, ...SHM_GEOMETRY, dir }),
    } as Record<string, unknown>,
  };
  /** A step whose body sets `v`; `r` is the key's rank. The function returns `v` (for the checks). */
  const stepBody = (id: string, label: string, body: string, prototype = false): Step => {
    const source = `"use strict";
      const { ids, seq, dno, native, handle, keyBuf, valBuf, valNode, encoded, lengths, encodeKey, codec, valueCodec,
              setBuf, setLength, STRING_64, TOO_LONG, maxKey, extra } = ctx;
      let i = 0;
      return () => { i = (i + 1) & ${
      STREAM - 1
    }; const r = seq[i]; let v; ${body} dno(v); return v; };`;
    return { id, label, fn: new Function("ctx", source)(ctx), prototype };
  };
  const step = (id: string, label: string, expr: string, prototype = false) =>
    stepBody(id, label, `v = ${expr};`, prototype);
  const steps: Step[] = [
    step("key-build", 'key build: "user:" + id', `"user:" + ids[r]`),
    step(
      "key-build-encode",
      "key build + encodeKey (lib/codec.ts)",
      `encodeKey("user:" + ids[r], keyBuf, maxKey)`,
    ),
    step(
      "ffi-call",
      "FFI call alone: shmc_lookup with an over-long key length (returns at once)",
      `native.shmc_lookup(handle, keyBuf, TOO_LONG, valBuf, valBuf.length)`,
    ),
    step(
      "native-lookup",
      "FFI + native lookup, no copy (pre-encoded key)",
      `native.shmc_lookup(handle, encoded[r], lengths[r], null, 0)`,
    ),
    step(
      "native-lookup-copy",
      "FFI + native lookup + copy of the 65-byte value",
      `native.shmc_lookup(handle, encoded[r], lengths[r], valBuf, valBuf.length)`,
    ),
    step("decode", "decode of the 64-byte string (lib/codec.ts Codec#decode)", `codec.decode(65)`),
    step(
      "set-encode-value",
      "set: Codec#encode of the 64-byte string",
      `valueCodec.encode(STRING_64)`,
    ),
    step(
      "ffi-call-insert",
      "set: FFI call alone: shmc_insert with an over-long key length (returns at once)",
      `native.shmc_insert(handle, keyBuf, TOO_LONG, setBuf, setLength, -1, 0)`,
    ),
    step(
      "native-insert",
      "set: FFI + native insert (overwrite, pre-encoded key and value)",
      `native.shmc_insert(handle, encoded[r], lengths[r], setBuf, setLength, -1, 0)`,
    ),
    // The whole get on a SharedCache of its own (same region), without the
    // contender wrapper the peer table goes through.
    step(
      "get-direct",
      "cache.get, called directly (no benchmark wrapper)",
      `extra.cache.get("user:" + ids[r])`,
    ),
    // The library's pieces composed inline: cache.get without its method
    // layers, to size the JS glue.
    stepBody(
      "proto-get-inline",
      "prototype: get composed inline from the library's pieces (encodeKey, shmc_lookup, Codec#decode)",
      `const n = encodeKey("user:" + ids[r], keyBuf, maxKey);
       const rc = native.shmc_lookup(handle, keyBuf, n, valBuf, valBuf.length);
       v = rc >= 0 ? codec.decode(rc) : undefined;`,
      true,
    ),
    // A decoded-value memo: if the native lookup also reported the slot and
    // its write stamp (an ABI addition; the slot's stamp already changes on
    // every write), a string value decoded before could be returned as is.
    // Estimated here with the rank standing in for the slot and an always
    // valid stamp: the cost of the lookup, the copy and the check.
    stepBody(
      "proto-get-memo",
      "prototype: get with a decoded-string memo validated by a slot stamp (estimate; needs a native stamp)",
      `const n = encodeKey("user:" + ids[r], keyBuf, maxKey);
       const rc = native.shmc_lookup(handle, keyBuf, n, valBuf, valBuf.length);
       v = rc >= 0 ? (extra.memoStamp[r] === 1 ? extra.memo[r] : codec.decode(rc)) : undefined;`,
      true,
    ),
    // Bench-only alternatives of single steps.
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
      `extra.td.decode(valBuf.subarray(1, 65))`,
      true,
    ),
  ];
  Object.assign(ctx.extra, {
    encBuf: new Uint8Array(SHM_GEOMETRY.maxValueBytes + 1),
    memo: ids.map(() => STRING_64),
    memoStamp: new Uint8Array(ids.length).fill(1),
  });

  // FFI with pointers resolved once, instead of a typed array per argument
  // (the same library file that lib/ffi/load.ts opened).
  const libPath = process.env.SHM_CACHE_LIB ||
    new URL("../zig/zig-out/lib/libshm_cache.so", import.meta.url).pathname;
  let closeExtra = () => {};
  // Pointers made once must stay put: under Bun a small typed array's
  // storage can move after ptr() (a cached pointer then reads stale bytes),
  // so these buffers are views of ArrayBuffers of their own.
  const pinned = new Uint8Array(new ArrayBuffer(4096), 0, SHM_GEOMETRY.maxKeyBytes + 1);
  const pinnedVal = new Uint8Array(new ArrayBuffer(SHM_GEOMETRY.maxValueBytes + 1));
  const pinnedKeys = new Uint8Array(new ArrayBuffer(ids.length * (SHM_GEOMETRY.maxKeyBytes + 1)));
  const pinnedEncoded = encoded.map((b, i) => {
    const at = i * (SHM_GEOMETRY.maxKeyBytes + 1);
    pinnedKeys.set(b, at);
    return pinnedKeys.subarray(at, at + b.length);
  });
  Object.assign(ctx.extra, {
    pinned,
    pinnedVal,
    pinnedNode: Buffer.from(pinnedVal.buffer, 0, pinnedVal.byteLength),
  });
  const fastGet = (decodeExpr: string) =>
    `const n = encodeKey("user:" + ids[r], extra.pinned, maxKey);
     const rc = extra.lookup(handle, extra.keyPtr, n, extra.valPtr, extra.pinnedVal.length);
     v = rc >= 0 ? ${decodeExpr} : undefined;`;
  if (runtime === "bun") {
    const ffiName = "bun:ffi";
    const ffi = await import(ffiName);
    const lib = ffi.dlopen(libPath, {
      shmc_lookup: { args: ["ptr", "ptr", "u32", "ptr", "u32"], returns: "i32" },
    });
    Object.assign(ctx.extra, {
      lookup: lib.symbols.shmc_lookup,
      keyPtrs: pinnedEncoded.map((b) => ffi.ptr(b)),
      keyPtr: ffi.ptr(pinned),
      valPtr: ffi.ptr(pinnedVal),
      CString: ffi.CString,
    });
    steps.push(
      step(
        "proto-ffi-numeric-pointers",
        "prototype: FFI + lookup + copy, pointers passed as numbers (bun:ffi ptr() once)",
        `extra.lookup(handle, extra.keyPtrs[r], lengths[r], extra.valPtr, extra.pinnedVal.length)`,
        true,
      ),
      step(
        "proto-decode-cstring",
        "prototype: decode with bun:ffi CString(ptr, 1, 64)",
        `new extra.CString(extra.valPtr, 1, 64).toString()`,
        true,
      ),
      stepBody(
        "proto-get-fast",
        "prototype: get with numeric pointers and utf8Slice decode",
        fastGet("extra.pinnedNode.utf8Slice(1, rc)"),
        true,
      ),
    );
    closeExtra = () => lib.close();
  } else {
    // deno-lint-ignore no-explicit-any
    const D = (globalThis as any).Deno;
    const lib = D.dlopen(libPath, {
      shmc_lookup: { parameters: ["pointer", "pointer", "u32", "pointer", "u32"], result: "i32" },
    });
    Object.assign(ctx.extra, {
      lookup: lib.symbols.shmc_lookup,
      keyPtrs: pinnedEncoded.map((b) => D.UnsafePointer.of(b)),
      keyPtr: D.UnsafePointer.of(pinned),
      valPtr: D.UnsafePointer.of(pinnedVal),
    });
    steps.push(
      step(
        "proto-ffi-pointer-objects",
        "prototype: FFI + lookup + copy, Deno pointer objects made once",
        `extra.lookup(handle, extra.keyPtrs[r], lengths[r], extra.valPtr, extra.pinnedVal.length)`,
        true,
      ),
      stepBody(
        "proto-get-fast",
        "prototype: get with pointer objects made once and utf8Slice decode",
        fastGet("extra.pinnedNode.utf8Slice(1, rc)"),
        true,
      ),
    );
    closeExtra = () => lib.close();
  }
  // Every step that yields a hit's value must yield the right one, on many keys.
  native.shmc_lookup(handle, encoded[0], lengths[0], pinnedVal, pinnedVal.length);
  for (const st of steps) {
    if (
      !st.id.startsWith("proto-get") && !/^(decode|get-direct)$/.test(st.id) &&
      !st.id.startsWith("proto-decode")
    ) {
      continue;
    }
    for (let n = 0; n < 2_000; n++) {
      const got = st.fn();
      if (got !== STRING_64) {
        throw new Error(`hit path step ${st.id} returned ${JSON.stringify(got)}`);
      }
    }
  }
  for (
    const st of steps.filter((x) =>
      x.id.startsWith("proto-ffi") || x.id.startsWith("native-lookup")
    )
  ) {
    for (let n = 0; n < 2_000; n++) {
      const rc = st.fn();
      if (rc !== (st.id === "native-lookup" ? 65 : 65)) {
        throw new Error(`hit path step ${st.id} returned ${rc}`);
      }
    }
  }
  return {
    steps,
    close: () => {
      (ctx.extra.cache as SharedCache).close();
      closeExtra();
      native.shmc_close(handle);
    },
  };
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
  try {
    if (WANTED.includes("redis")) {
      if (redisServerPath() === undefined) {
        // scripts/bench-report.sh installs it; scripts/bench.sh may run without.
        process.stderr.write("redis-server is not installed: Redis is left out of this run\n");
        WANTED.splice(WANTED.indexOf("redis"), 1);
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
    const path = WANTED.includes("shm-cache") ? await hitPathSteps(dir) : undefined;

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
          const sample = op.kind === "loop"
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
    const breakdown = steps.length > 0 ? hitBreakdown(steps, results) : undefined;

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
          `insert/delete: batches of ${BATCH_SYNC} (sync) or ${BATCH_ASYNC} (Redis) fresh keys, timed by hand in mitata's manual mode`,
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

/** Where a string hit's time goes, from the step measurements (ns, medians). */
function hitBreakdown(
  steps: { id: string; ns: Spread }[],
  results: OpResult[],
): Record<string, number> {
  const at = (id: string) => steps.find((s) => s.id === id)?.ns.median ?? NaN;
  const get =
    results.find((r) => r.op === "get-hit-string" && r.contender === "shm-cache")?.ns.median ?? NaN;
  const set =
    results.find((r) => r.op === "set-overwrite-string" && r.contender === "shm-cache")?.ns
      .median ?? NaN;
  const keyBuild = at("key-build");
  const keyEncode = at("key-build-encode") - keyBuild;
  const ffi = at("ffi-call");
  const lookup = at("native-lookup") - ffi;
  const copy = at("native-lookup-copy") - at("native-lookup");
  const decodeNs = at("decode");
  const direct = at("get-direct");
  const rest = direct - keyBuild - keyEncode - at("native-lookup-copy") - decodeNs;
  const valueEncode = at("set-encode-value");
  const insert = at("native-insert");
  const insertFfi = at("ffi-call-insert");
  return {
    getTotal: get,
    getDirect: direct,
    keyBuild,
    keyEncode,
    ffiCall: ffi,
    nativeLookup: lookup,
    valueCopy: copy,
    valueDecode: decodeNs,
    remainder: rest,
    methodLayers: direct - at("proto-get-inline"),
    setTotal: set,
    setValueEncode: valueEncode,
    setFfiAndNativeInsert: insert,
    setFfiCall: insertFfi,
    setNativeInsert: insert - insertFfi,
    setRemainder: set - keyBuild - keyEncode - valueEncode - insert,
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
    out.push(
      `\nhit path cost: get ${fmtNs(b.getDirect)} (called directly; ${
        fmtNs(b.getTotal)
      } through the peer wrapper) = key build ${fmtNs(b.keyBuild)} + key encode ${
        fmtNs(b.keyEncode)
      } + FFI call ${fmtNs(b.ffiCall)} + native lookup ${fmtNs(b.nativeLookup)} + value copy ${
        fmtNs(b.valueCopy)
      } + value decode ${fmtNs(b.valueDecode)} + remainder ${fmtNs(b.remainder)} (of which ${
        fmtNs(b.methodLayers)
      } are cache.get's method layers; the rest is what the steps cost together and not apart)`,
    );
    out.push(
      `set cost: set ${fmtNs(b.setTotal)} = key build+encode ${
        fmtNs(b.keyBuild + b.keyEncode)
      } + value encode ${fmtNs(b.setValueEncode)} + FFI call ${
        fmtNs(b.setFfiCall)
      } + native insert ${fmtNs(b.setNativeInsert)} + remainder ${fmtNs(b.setRemainder)}`,
    );
  }
  console.log(out.join("\n"));
}

await main();
