/**
 * The one symbol table of the native library, in Deno's notation; `bun.ts`
 * translates it for `bun:ffi`. Each entry's comment is the C signature of
 * `zig/src/exports.zig`. Lengths are u32; `pointer` is the opaque handle.
 *
 * @module
 */

import { Status } from "../errors.ts";

export const symbols = {
  // u32 shmc_abi_version(void)
  shmc_abi_version: { parameters: [], result: "u32" },
  // u32 shmc_constants(u32* out, u32 cap) -- CONSTANTS, in order; returns how many there are
  shmc_constants: { parameters: ["buffer", "u32"], result: "u32" },
  // void* shmc_open(const u8* dir, u32 dir_len, const u8* name, u32 name_len,
  //                 f64 config[7] /* capacity, key bytes, value bytes, ttl ms, lock timeout ms, codec,
  //                 on mismatch (0 fail, 1 replace); in: -1 = not given; out: the region's */,
  //                 u8* err, u32 err_cap, i32 status_out[2])
  shmc_open: {
    parameters: ["buffer", "u32", "buffer", "u32", "buffer", "buffer", "u32", "buffer"],
    result: "pointer",
  },
  // void shmc_close(void* h)
  shmc_close: { parameters: ["pointer"], result: "void" },
  // i32 shmc_destroy(const u8* dir, u32 dir_len, const u8* name, u32 name_len,
  //                  u8* err, u32 err_cap, i32 status_out[2])
  shmc_destroy: {
    parameters: ["buffer", "u32", "buffer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // i32 shmc_inspect(const u8* dir, u32 dir_len, const u8* name, u32 name_len, f64 out[25] /* INSPECT */,
  //                  u32* pids, u32 pids_cap, u8* err, u32 err_cap, i32 status_out[2])
  shmc_inspect: {
    parameters: [
      "buffer",
      "u32",
      "buffer",
      "u32",
      "buffer",
      "buffer",
      "u32",
      "buffer",
      "u32",
      "buffer",
    ],
    result: "i32",
  },
  // i32 shmc_list(const u8* dir, u32 dir_len, u8* out, u32 out_cap, u8* err, u32 err_cap,
  //               i32 status_out[2]) -- names, each + '\n'; returns the bytes needed
  shmc_list: {
    parameters: ["buffer", "u32", "buffer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // i32 shmc_dir(const u8* dir, u32 dir_len, u8* out, u32 out_cap, u8* err, u32 err_cap,
  //              i32 status_out[2])
  shmc_dir: {
    parameters: ["buffer", "u32", "buffer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // i32 shmc_lookup(void* h, const u8* key, u32 key_len, u8* out /* nullable */, u32 out_cap)
  shmc_lookup: { parameters: ["pointer", "buffer", "u32", "buffer", "u32"], result: "i32" },
  // i32 shmc_insert(void* h, const u8* key, u32 key_len, const u8* value, u32 value_len, f64 ttl_ms,
  //                 u32 mode /* 0 set, 1 add, 2 update (keeps a found entry's expiry) */)
  shmc_insert: {
    parameters: ["pointer", "buffer", "u32", "buffer", "u32", "f64", "u32"],
    result: "i32",
  },
  // i32 shmc_bind(void* h, u8* key, u32 key_cap, u8* value, u32 value_cap, u32* meta, u32 meta_len /* >= 8 */,
  //                const u32* memo /* 6 per entry */, u32 memo_entries)
  shmc_bind: {
    parameters: ["pointer", "buffer", "u32", "buffer", "u32", "buffer", "u32", "buffer", "u32"],
    result: "i32",
  },
  // i32 shmc_get(void* h, u32 key_len, u32 want_value) -- bound buffers; on a hit meta =
  // slot, 1 if the memo entry matched (value not copied), stamp lo, hi, checksum lo, hi, 0, 0
  shmc_get: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  // i32 shmc_put(void* h, u32 key_len, u32 value_len, f64 ttl_ms, u32 mode) -- bound buffers
  shmc_put: { parameters: ["pointer", "u32", "u32", "f64", "u32"], result: "i32" },
  // i32 shmc_scan(void* h, u32 from, u32 want_value) -- bound buffers; the first live entry in
  // the next chunk of slots from `from`: key (and value) copied, meta = slot, key length, returns
  // the value length; none in the chunk: -1 (miss), meta = next from, 1 if slots are left else 0
  shmc_scan: { parameters: ["pointer", "u32", "u32"], result: "i32" },
  // i32 shmc_del(void* h, u32 key_len) -- bound buffers
  shmc_del: { parameters: ["pointer", "u32"], result: "i32" },
  // i32 shmc_remove(void* h, const u8* key, u32 key_len)
  shmc_remove: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  // i32 shmc_clear(void* h)
  shmc_clear: { parameters: ["pointer"], result: "i32" },
  // i32 shmc_size(void* h)
  shmc_size: { parameters: ["pointer"], result: "i32" },
  // i32 shmc_stats(void* h, u32 all /* 1 = summed over every handle */, f64 out[17] /* STATS */)
  shmc_stats: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  // void shmc_add_unstored(void* h, u32 n)
  shmc_add_unstored: { parameters: ["pointer", "u32"], result: "void" },
  // i32 shmc_lock(void* h)
  shmc_lock: { parameters: ["pointer"], result: "i32" },
  // i32 shmc_unlock(void* h)
  shmc_unlock: { parameters: ["pointer"], result: "i32" },
  // i32 shmc_recover(void* h)
  shmc_recover: { parameters: ["pointer"], result: "i32" },
  // f64 shmc_read_begin(void* h)
  shmc_read_begin: { parameters: ["pointer"], result: "f64" },
  // i32 shmc_read_validate(void* h, f64 seq)
  shmc_read_validate: { parameters: ["pointer", "f64"], result: "i32" },
  // i32 shmc_verify(void* h, u32 repair, u8* out, u32 out_cap, u32 out_len[1])
  shmc_verify: { parameters: ["pointer", "u32", "buffer", "u32", "buffer"], result: "i32" },
  // i32 shmc_file_id(void* h, f64 out[2]) -- device, inode
  shmc_file_id: { parameters: ["pointer", "buffer"], result: "i32" },
  // i32 shmc_handle_slot(void* h)
  shmc_handle_slot: { parameters: ["pointer"], result: "i32" },
  // i32 shmc_slot_alive(void* h, u32 slot)
  shmc_slot_alive: { parameters: ["pointer", "u32"], result: "i32" },
} as const;

/** The ABI version this binding expects (zig/src/abi.zig version). */
export const ABI_VERSION = 12;

/** The f64 vector of `shmc_stats`, in order (zig/src/exports.zig stats_fill). */
export const STATS = [
  "hits",
  "misses",
  "memoHits",
  "readTimeouts",
  "lockTimeouts",
  "droppedWrites",
  "unstoredResults",
  "sets",
  "deletes",
  "evictions",
  "expirations",
  "recoveries",
  "rebuilds",
  "size",
  "capacity",
  "lockOwnerPid",
  "seq",
] as const;

/** The f64 vector of `shmc_inspect`: STATS (summed over all handles), then these. */
export const INSPECT = [
  ...STATS,
  "fileBytes",
  "keyBytesMax",
  "valueBytesMax",
  "ttlMs",
  "handles",
  "lockOwnerSlot",
  "lockOwnerAlive",
  "writerActive",
] as const;

/**
 * The numbers both sides must agree on, each defined once here, in the order
 * of zig/src/abi.zig `constants` (which `shmc_constants` returns). The loader
 * compares every one at load, as it does the ABI version.
 */
export const CONSTANTS = {
  /** The ABI version (`ABI_VERSION`). */
  abiVersion: ABI_VERSION,
  /** shmc_open's config vector: capacity, maxKeyBytes, maxValueBytes, ttlMs, lockTimeoutMs, codec, onMismatch. */
  configLength: 7,
  /** The u32 meta vector bound by shmc_bind. */
  metaLength: 8,
  /** u32 per decode-memo entry: slot, value length, stamp (2), checksum (2). */
  memoStride: 6,
  /** shmc_insert / shmc_put mode: store. */
  insertSet: 0,
  /** shmc_insert / shmc_put mode: store only where no live entry is. */
  insertAdd: 1,
  /** shmc_insert / shmc_put mode: store, keeping the found entry's expiry, even a passed one. */
  insertUpdate: 2,
  /** The f64 vector of shmc_stats. */
  statsLength: STATS.length,
  /** The f64 vector of shmc_inspect. */
  inspectLength: INSPECT.length,
  /** The number of statuses (lib/errors.ts Status). */
  statusCount: Object.keys(Status).length,
} as const;

/**
 * The first number the library and this module disagree on, as a sentence
 * ("memoStride: library 7, module 6"), or undefined when all agree.
 */
export function constantsMismatch(native: Native): string | undefined {
  const names = Object.keys(CONSTANTS) as (keyof typeof CONSTANTS)[];
  const out = new Uint32Array(names.length);
  const count = native.shmc_constants(out, out.length);
  for (let i = 0; i < names.length; i++) {
    if (out[i] !== CONSTANTS[names[i]]) {
      return `${names[i]}: library ${out[i]}, module ${CONSTANTS[names[i]]}`;
    }
  }
  if (count !== names.length) {
    return `number of constants: library ${count}, module ${names.length}`;
  }
  return undefined;
}

/** An opaque native handle (a Deno pointer object or a Bun number). */
export type NativeHandle = { readonly __nativeHandle: unique symbol } | number | object;

/** The native library, the same shape under both runtimes. */
export interface Native {
  shmc_abi_version(): number;
  shmc_constants(out: Uint32Array, cap: number): number;
  shmc_open(
    dir: Uint8Array,
    dirLen: number,
    name: Uint8Array,
    nameLen: number,
    config: Float64Array,
    err: Uint8Array,
    errCap: number,
    status: Int32Array,
  ): NativeHandle | null;
  shmc_close(h: NativeHandle): void;
  shmc_destroy(
    dir: Uint8Array,
    dirLen: number,
    name: Uint8Array,
    nameLen: number,
    err: Uint8Array,
    errCap: number,
    status: Int32Array,
  ): number;
  shmc_inspect(
    dir: Uint8Array,
    dirLen: number,
    name: Uint8Array,
    nameLen: number,
    out: Float64Array,
    pids: Uint32Array,
    pidsCap: number,
    err: Uint8Array,
    errCap: number,
    status: Int32Array,
  ): number;
  shmc_list(
    dir: Uint8Array,
    dirLen: number,
    out: Uint8Array,
    outCap: number,
    err: Uint8Array,
    errCap: number,
    status: Int32Array,
  ): number;
  shmc_dir(
    dir: Uint8Array,
    dirLen: number,
    out: Uint8Array,
    outCap: number,
    err: Uint8Array,
    errCap: number,
    status: Int32Array,
  ): number;
  shmc_lookup(
    h: NativeHandle,
    key: Uint8Array,
    keyLen: number,
    out: Uint8Array | null,
    outCap: number,
  ): number;
  shmc_insert(
    h: NativeHandle,
    key: Uint8Array,
    keyLen: number,
    value: Uint8Array,
    valueLen: number,
    ttlMs: number,
    mode: number,
  ): number;
  shmc_remove(h: NativeHandle, key: Uint8Array, keyLen: number): number;
  shmc_bind(
    h: NativeHandle,
    key: Uint8Array,
    keyCap: number,
    value: Uint8Array,
    valueCap: number,
    meta: Uint32Array,
    metaLen: number,
    memo: Uint32Array,
    memoEntries: number,
  ): number;
  shmc_get(h: NativeHandle, keyLen: number, wantValue: number): number;
  shmc_put(h: NativeHandle, keyLen: number, valueLen: number, ttlMs: number, mode: number): number;
  shmc_scan(h: NativeHandle, from: number, wantValue: number): number;
  shmc_del(h: NativeHandle, keyLen: number): number;
  shmc_clear(h: NativeHandle): number;
  shmc_size(h: NativeHandle): number;
  shmc_stats(h: NativeHandle, all: number, out: Float64Array): number;
  shmc_add_unstored(h: NativeHandle, n: number): void;
  shmc_lock(h: NativeHandle): number;
  shmc_unlock(h: NativeHandle): number;
  shmc_recover(h: NativeHandle): number;
  shmc_read_begin(h: NativeHandle): number;
  shmc_read_validate(h: NativeHandle, seq: number): number;
  shmc_verify(
    h: NativeHandle,
    repair: number,
    out: Uint8Array,
    outCap: number,
    outLen: Uint32Array,
  ): number;
  shmc_file_id(h: NativeHandle, out: Float64Array): number;
  shmc_handle_slot(h: NativeHandle): number;
  shmc_slot_alive(h: NativeHandle, slot: number): number;
}
