/**
 * Seeded random values for the codec property tests, and an exact
 * comparison: the same seed gives the same values in Deno and Bun, so a
 * child process of the other runtime can check what this one wrote.
 */

import { createHash } from "node:crypto";
import type { CodecName } from "../mod.ts";
import { Codec } from "../lib/codec.ts";

/** mulberry32: a small seeded PRNG, the same sequence in every runtime. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const UNITS = [
  0x61,
  0x7a,
  0x20,
  0x22,
  0x5c,
  0x0,
  0x7f,
  0xe9,
  0x3b1,
  0x4e2d,
  0xfffd,
  0xfeff,
  0xd800,
  0xdbff,
  0xdc00,
  0xdfff, // lone surrogates when unpaired
  0xd83d,
  0xde00, // a pair when adjacent
];

/** A random string of UTF-16 units, lone surrogates included. */
export function randomString(next: () => number, maxLength = 12): string {
  const n = Math.floor(next() * (maxLength + 1));
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(UNITS[Math.floor(next() * UNITS.length)]);
  return s;
}

const NUMBERS = [0, -0, 1, -1, 0.1, 1e300, -5e-324, 2 ** 53, NaN, Infinity, -Infinity];

function randomNumber(next: () => number, exactJson: boolean): number {
  const pick = next();
  if (pick < 0.5) {
    const n = NUMBERS[Math.floor(next() * NUMBERS.length)];
    if (exactJson && (!Number.isFinite(n) || Object.is(n, -0))) return 7;
    return n;
  }
  return (next() - 0.5) * 10 ** Math.floor(next() * 40 - 20);
}

/**
 * A random value that `codec` stores exactly: for "json", plain data
 * without what JSON changes (inside objects and arrays); for "structured",
 * anything structured clone copies. The top level may be any value a cache
 * stores (strings, numbers, bigint and bytes have tags of their own).
 */
export function randomValue(next: () => number, codec: CodecName, depth = 0): unknown {
  const top = depth === 0;
  const json = codec === "json";
  // JSON: any top-level value with a tag of its own, plain data inside.
  const kinds = !json ? 16 : top ? 10 : 7;
  const kind = Math.floor(next() * (depth > 3 ? 4 : kinds));
  switch (kind) {
    case 0:
      return randomString(next);
    case 1:
      return randomNumber(next, json && !top);
    case 2:
      return next() < 0.5;
    case 3:
      return null;
    case 4:
    case 5: {
      const n = Math.floor(next() * 5);
      const array: unknown[] = [];
      for (let i = 0; i < n; i++) {
        if (!json && next() < 0.1) array.length++; // a hole
        else array.push(randomValue(next, codec, depth + 1));
      }
      return array;
    }
    case 6: {
      const object: Record<string, unknown> = !json && next() < 0.2 ? Object.create(null) : {};
      const n = Math.floor(next() * 5);
      for (let i = 0; i < n; i++) {
        // devalue refuses an own "__proto__" key (a TypeError, tested).
        const key = json && next() < 0.1 ? "__proto__" : randomString(next, 6);
        Object.defineProperty(object, key, {
          value: randomValue(next, codec, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return object;
    }
    case 7:
      return undefined;
    case 8:
      return BigInt(Math.floor((next() - 0.5) * 2 ** 53)) * 1000003n;
    case 9:
      return new Uint8Array(Array.from({ length: Math.floor(next() * 6) }, () => next() * 256));
    case 10:
      return new Date(Math.floor(next() * 2e12));
    case 11: {
      const map = new Map<unknown, unknown>();
      for (let i = 0; i < 3; i++) {
        map.set(randomValue(next, codec, depth + 2), randomValue(next, codec, depth + 1));
      }
      return map;
    }
    case 12:
      return new Set([randomString(next), randomNumber(next, false)]);
    case 13:
      return new RegExp(["a+b", "^x$", "[\\d]"][Math.floor(next() * 3)], next() < 0.5 ? "gi" : "");
    case 14:
      return new Float64Array([randomNumber(next, false), -0]);
    default:
      return new Int32Array([Math.floor((next() - 0.5) * 2 ** 32)]);
  }
}

/** Whether `a` and `b` are the same data: types, prototypes, -0, holes, order. */
export function exactEqual(a: unknown, b: unknown, seen = new Map<object, object>()): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a !== "object" || a === null || b === null) return Object.is(a, b);
  const x = a as object;
  const y = b as object;
  if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return false;
  if (seen.has(x)) return seen.get(x) === y;
  seen.set(x, y);
  if (x instanceof Date) return Object.is(x.getTime(), (y as Date).getTime());
  if (x instanceof RegExp) return String(x) === String(y);
  if (ArrayBuffer.isView(x)) {
    const xs = x as unknown as ArrayLike<unknown>;
    const ys = y as unknown as ArrayLike<unknown>;
    if (xs.length !== ys.length) return false;
    for (let i = 0; i < xs.length; i++) if (!Object.is(xs[i], ys[i])) return false;
    return true;
  }
  if (x instanceof Map) {
    const ye = [...(y as Map<unknown, unknown>)];
    const xe = [...x];
    return xe.length === ye.length && xe.every((e, i) => exactEqual(e, ye[i], seen));
  }
  if (x instanceof Set) {
    const ye = [...(y as Set<unknown>)];
    const xe = [...x];
    return xe.length === ye.length && xe.every((e, i) => exactEqual(e, ye[i], seen));
  }
  if (Array.isArray(x)) {
    const ya = y as unknown[];
    if (x.length !== ya.length) return false;
    for (let i = 0; i < x.length; i++) {
      if ((i in x) !== (i in ya) || !exactEqual(x[i], ya[i], seen)) return false;
    }
    return true;
  }
  const xk = Object.keys(x);
  const yk = Object.keys(y);
  if (xk.length !== yk.length || xk.some((k, i) => k !== yk[i])) return false;
  return xk.every((k) =>
    exactEqual((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], seen)
  );
}

/**
 * `count` distinct keys (random strings, lone surrogates included, and a
 * few byte keys) with random values for `codec`, from `seed`.
 */
export function randomEntries(
  seed: number,
  count: number,
  codec: CodecName,
): [string | Uint8Array, unknown][] {
  const next = rng(seed);
  // The reproduction first: lone surrogates and U+FFFD, as keys
  // and as values, must stay apart across runtimes.
  const out: [string | Uint8Array, unknown][] = [
    [`${seed}:\uD800`, "\uD800"],
    [`${seed}:\uDFFF`, "\uDFFF"],
    [`${seed}:\uFFFD`, "\uFFFD"],
    [`${seed}:pair`, "\uD83D\uDE00 \uDE00\uD83D"],
  ];
  const seen = new Set<string>(out.map(([key]) => "s" + key));
  while (out.length < count) {
    const key: string | Uint8Array = next() < 0.1
      ? new Uint8Array([seed & 0xff, out.length & 0xff, out.length >> 8])
      : `${seed}:` + randomString(next, 8);
    const id = typeof key === "string" ? "s" + key : "b" + key.join(",");
    const value = randomValue(next, codec);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push([key, value]);
  }
  return out;
}

/** A SHA-256 of the encodings of `values`: equal in two runtimes iff their bytes are. */
export function digest(values: unknown[], codec: CodecName): string {
  const encoder = new Codec(8192, codec);
  const hash = createHash("sha256");
  for (const v of values) hash.update(encoder.buf.subarray(0, encoder.encode(v)));
  return hash.digest("hex");
}
