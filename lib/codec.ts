/**
 * The value encoding shared by every runtime: one tag byte, then the
 * payload. Deno and Bun write and read exactly the same bytes.
 *
 * | tag | value | payload |
 * | --- | --- | --- |
 * | 0 | `undefined` | none |
 * | 1 | `null` | none |
 * | 2, 3 | `false`, `true` | none |
 * | 4 | number | float64, little endian |
 * | 5 | bigint | its decimal text (ASCII) |
 * | 6 | string | UTF-8 |
 * | 7 | `Uint8Array` | the bytes |
 * | 8 | array or plain object | UTF-8 JSON text, exact (see `_json.ts`) |
 * | 9 | string with a lone surrogate | WTF-8 (see `_wtf8.ts`) |
 * | 10 | any other object (`codec: "structured"` only) | UTF-8 devalue text (see `_structured.ts`) |
 *
 * Keys carry a tag byte too (`s` for strings, `w` for strings with a lone
 * surrogate, in WTF-8, and `b` for bytes), so the string `"a"` and the bytes
 * `[0x61]` are different keys, and `"\uD800"` is not `"\uFFFD"`.
 *
 * A well-formed string has the same bytes in UTF-8 and WTF-8, so only
 * strings that `isWellFormed()` rejects take the slower WTF-8 path, and the
 * tag tells the decoder which they were.
 *
 * @module
 */

export const TAG_UNDEFINED = 0;
export const TAG_NULL = 1;
export const TAG_FALSE = 2;
export const TAG_TRUE = 3;
export const TAG_NUMBER = 4;
export const TAG_BIGINT = 5;
export const TAG_STRING = 6;
export const TAG_BYTES = 7;
export const TAG_JSON = 8;
export const TAG_WTF8 = 9;
export const TAG_STRUCTURED = 10;

export const KEY_TAG_STRING = 0x73; // "s"
export const KEY_TAG_WTF8 = 0x77; // "w"
export const KEY_TAG_BYTES = 0x62; // "b"

/**
 * How a cache encodes objects: `"json"` (exact JSON or a TypeError) or
 * `"structured"` (Date, Map, Set, ... as well; see `_structured.ts`).
 */
export type CodecName = "json" | "structured";

/** The codec's number in the region header (zig/src/region.zig `Header.codec`). */
export const CODEC_IDS: Readonly<Record<CodecName, number>> = { json: 0, structured: 1 };
/** The codecs by number (the inverse of {@linkcode CODEC_IDS}). */
export const CODEC_NAMES: readonly CodecName[] = ["json", "structured"];

/** Values a {@linkcode SharedCache} stores. */
export type CacheValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | undefined
  | Uint8Array
  | readonly unknown[]
  | { readonly [key: string]: unknown };

import { Buffer } from "node:buffer";
import { describe } from "./_describe.ts";
import { exactJsonText, isExactJson } from "./_json.ts";
import { parseStructured, structuredText } from "./_structured.ts";
import { decodeWtf8, encodeWtf8Into, isWellFormed, wtf8Length } from "./_wtf8.ts";

const encoder = new TextEncoder();
const keyDecoder = new TextDecoder();

/**
 * Whether {@linkcode encodeKey} first flattens a string key with
 * `trimEnd()`: a gain of about a quarter of the key's cost under V8
 * (Deno), a small loss under JavaScriptCore (Bun), whose ropes resolve on
 * the first charCodeAt. Measured in bench/peers_bench.ts.
 */
// deno-lint-ignore no-explicit-any
const FLATTEN_BY_TRIM = (globalThis as any).Bun === undefined;

/**
 * Encodes values into, and decodes them from, one buffer that a cache
 * reuses for every call: no allocation per call beyond the decoded value.
 */
export class Codec {
  /** The value buffer: tag byte, payload, spare bytes. */
  readonly buf: Buffer;
  readonly #view: DataView;
  readonly #payload: Uint8Array;
  /** The same bytes as `buf`, as a plain Uint8Array. */
  readonly #plain: Uint8Array;
  readonly #limit: number;
  readonly #structured: boolean;

  /** A buffer for `limit` payload bytes (the tag byte is extra). */
  constructor(limit: number, codec: CodecName = "json") {
    this.#structured = codec === "structured";
    // One spare byte beyond the tag and payload: an 8-byte number needs 9.
    // Over an ArrayBuffer of its own: the native side keeps this buffer's
    // address (shmc_bind), so it must not be a small on-heap typed array
    // that the engine may move or re-home.
    this.buf = Buffer.from(new ArrayBuffer(Math.max(limit + 1, 9)));
    this.#view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.#payload = this.buf.subarray(1);
    this.#plain = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.#limit = limit;
  }

  /**
   * Encodes `value` into the buffer and returns its length including the
   * tag, or -1 when the payload would exceed the limit (the caller reports
   * the size; see {@linkcode Codec.size}).
   */
  encode(value: unknown): number {
    const buf = this.buf;
    switch (typeof value) {
      case "string":
        if (!isWellFormed(value)) {
          buf[0] = TAG_WTF8;
          return this.#wtf8(value);
        }
        buf[0] = TAG_STRING;
        return this.#text(value);
      case "number":
        if (this.#limit < 8) return -1;
        buf[0] = TAG_NUMBER;
        this.#view.setFloat64(1, value, true);
        return 9;
      case "boolean":
        buf[0] = value ? TAG_TRUE : TAG_FALSE;
        return 1;
      case "undefined":
        buf[0] = TAG_UNDEFINED;
        return 1;
      case "bigint":
        buf[0] = TAG_BIGINT;
        return this.#text(value.toString());
      case "object": {
        if (value === null) {
          buf[0] = TAG_NULL;
          return 1;
        }
        if (value instanceof Uint8Array) {
          if (value.byteLength > this.#limit) return -1;
          buf[0] = TAG_BYTES;
          buf.set(value, 1);
          return value.byteLength + 1;
        }
        // JSON.stringify may run the caller's toJSON, which may use the
        // cache and so this buffer: the text first, then the buffer.
        if (!this.#structured) {
          const text = exactJsonText(value);
          buf[0] = TAG_JSON;
          return this.#text(text);
        }
        // Structured: data that JSON gives back exactly stays JSON (the
        // faster of the two to parse), anything else is devalue text.
        if (isExactJson(value, true)) {
          const text = JSON.stringify(value);
          buf[0] = TAG_JSON;
          return this.#text(text);
        }
        const text = structuredText(value);
        buf[0] = TAG_STRUCTURED;
        return this.#text(text);
      }
      default:
        throw new TypeError(`value: ${describe(value)} is not storable`);
    }
  }

  /** The encoded payload size of `value` (for error messages; slow path). */
  size(value: unknown): number {
    if (typeof value === "string") return wtf8Length(value);
    if (typeof value === "bigint") return value.toString().length;
    if (value instanceof Uint8Array) return value.byteLength;
    if (typeof value === "number") return 8;
    if (typeof value === "object" && value !== null) {
      const text = !this.#structured
        ? exactJsonText(value)
        : isExactJson(value, true)
        ? JSON.stringify(value)
        : structuredText(value);
      return Buffer.byteLength(text, "utf8");
    }
    return 0;
  }

  #wtf8(text: string): number {
    if (text.length > this.#limit) return -1;
    const written = encodeWtf8Into(text, this.buf, 1, this.#limit);
    return written < 0 ? -1 : written + 1;
  }

  #text(text: string): number {
    // Fast path: a string of n UTF-16 units needs at most 3n UTF-8 bytes.
    if (text.length * 3 <= this.#limit) {
      return encoder.encodeInto(text, this.#payload).written + 1;
    }
    if (text.length > this.#limit) return -1;
    const { read, written } = encoder.encodeInto(text, this.buf.subarray(1, this.#limit + 1));
    return read === text.length ? written + 1 : -1;
  }

  /** Decodes `buf[0..length)` (tag included). */
  decode(length: number): unknown {
    const buf = this.buf;
    switch (buf[0]) {
      case TAG_STRING:
        // Buffer#toString decodes in place: no view object per call.
        return buf.toString("utf8", 1, length);
      case TAG_NUMBER:
        return this.#view.getFloat64(1, true);
      case TAG_TRUE:
        return true;
      case TAG_FALSE:
        return false;
      case TAG_NULL:
        return null;
      case TAG_UNDEFINED:
        return undefined;
      case TAG_BYTES:
        // A copy, as a plain Uint8Array (not a Buffer, which shares memory
        // on slice and would surprise a caller): slice of a plain view is
        // the cheapest copy in both runtimes (bench/peers_bench.ts).
        return this.#plain.slice(1, length);
      case TAG_BIGINT:
        return BigInt(buf.toString("latin1", 1, length));
      case TAG_JSON:
        return JSON.parse(buf.toString("utf8", 1, length));
      case TAG_WTF8:
        return decodeWtf8(buf, 1, length);
      case TAG_STRUCTURED:
        return parseStructured(buf.toString("utf8", 1, length));
      default:
        // Not written by this codec: not ours to interpret.
        return undefined;
    }
  }
}

/** Encodes a key (tag byte + bytes) into `buf`; -1 if over `limit` payload bytes. */
export function encodeKey(key: string | Uint8Array, buf: Uint8Array, limit: number): number {
  if (typeof key === "string") {
    buf[0] = KEY_TAG_STRING;
    const n = key.length;
    if (n <= limit) {
      // ASCII fast path: a plain loop beats encodeInto for short keys.
      let flat = key;
      if (FLATTEN_BY_TRIM) {
        // A key built per call ("user:" + id) is a V8 ConsString, and
        // charCodeAt on one costs about twice as much per character as on
        // a flat string. trimEnd() returns the flat string when nothing is
        // trimmed; equal lengths mean equal contents.
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
    if (!isWellFormed(key)) {
      buf[0] = KEY_TAG_WTF8;
      const written = encodeWtf8Into(key, buf, 1, limit);
      return written < 0 ? -1 : written + 1;
    }
    const { read, written } = encoder.encodeInto(key, buf.subarray(1, limit + 1));
    return read === n ? written + 1 : -1;
  }
  if (key instanceof Uint8Array) {
    if (key.byteLength > limit) return -1;
    buf[0] = KEY_TAG_BYTES;
    buf.set(key, 1);
    return key.byteLength + 1;
  }
  throw keyTypeError(key);
}

/** The encoded size of a key without its tag byte (for error messages). */
export function keySize(key: string | Uint8Array): number {
  return typeof key === "string" ? wtf8Length(key) : key.byteLength;
}

/**
 * Decodes a key that {@linkcode encodeKey} wrote, `buf[0..length)` (tag
 * included); undefined for a tag it never writes.
 */
export function decodeKey(buf: Uint8Array, length: number): string | Uint8Array | undefined {
  // Every key we write has its tag byte: one of no bytes (written by
  // another program, or a corrupt slot) is not ours, and buf[0] is then
  // left over from an earlier key.
  if (length < 1) return undefined;
  switch (buf[0]) {
    case KEY_TAG_STRING:
      return keyDecoder.decode(buf.subarray(1, length));
    case KEY_TAG_WTF8:
      return decodeWtf8(buf, 1, length);
    case KEY_TAG_BYTES:
      return buf.slice(1, length);
    default:
      return undefined;
  }
}

/** Throws the `TypeError` for a key that is neither a string nor a Uint8Array. */
export function checkKeyType(key: unknown): asserts key is string | Uint8Array {
  if (typeof key !== "string" && !(key instanceof Uint8Array)) throw keyTypeError(key);
}

function keyTypeError(key: unknown): TypeError {
  return new TypeError(
    `key must be a string or a Uint8Array, got ${key === null ? "null" : typeof key}`,
  );
}
