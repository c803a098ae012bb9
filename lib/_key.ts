/**
 * The default cache key of `memoize`: a string derived from the arguments.
 *
 * The key is a canonical encoding of the argument values, built so that two
 * argument lists get the same key exactly when they are equal as data:
 *
 * - It is deterministic across processes and runtimes. It uses only
 *   operations the language specifies exactly (`String(number)`, which gives
 *   the shortest round-trip form; `JSON.stringify` of a string; sorting
 *   strings by UTF-16 code units), never object identity, hash seeds or
 *   insertion order.
 * - Every value carries a type tag, and every encoding is self-delimiting (a
 *   terminator, a length prefix or a closing bracket), so no encoding is a
 *   prefix of another and a list of encodings splits one way only. Hence
 *   `1` and `"1"`, `[1, 2]` and `"1,2"`, `{ a: 1 }` and `{ a: "1" }`,
 *   `f(1)` and `f(1, undefined)` all get different keys.
 * - Plain objects are encoded with their keys sorted, so key order does not
 *   matter; Map entries and Set elements are sorted by their encodings, so
 *   insertion order does not matter either.
 * - What cannot be encoded faithfully is rejected with a TypeError that names
 *   the argument and the path inside it: functions, symbols, symbol-keyed
 *   properties, cycles, nesting deeper than {@linkcode MAX_KEY_DEPTH}, and
 *   instances of classes without a known encoding. A class opts in with a
 *   {@linkcode memoizeKey} method.
 *
 * The encodings, by type (`<s>` is the encoding of a string):
 *
 * | value | encoding |
 * | --- | --- |
 * | `undefined`, `null`, `true`, `false` | `u`, `n`, `t`, `f` |
 * | number | `d` + `String(x)` + `,`; `-0` is `d-0,`, and `NaN`, `Infinity`, `-Infinity` are spelled out |
 * | bigint | `b` + decimal digits + `,` |
 * | string | `s` + length in UTF-16 units + `:` + the string; a string with a lone surrogate is `w` + `JSON.stringify(s)` (which escapes it), so that the key survives UTF-8 |
 * | `Uint8Array` (and subclasses such as `Buffer`) | `B` + byte length + `:` + lowercase hex |
 * | other typed arrays, `DataView` | `X` + `<s>` of the type name + byte length + `:` + hex of the bytes (platform byte order, as all processes sharing memory share a machine) |
 * | `ArrayBuffer` | `A` + byte length + `:` + hex |
 * | `Date` | `D` + `getTime()` + `,` (an invalid date is `DNaN,`) |
 * | array (prototype `Array.prototype`) | `[` + the elements + `]`; holes are encoded as `undefined`, other own properties are ignored |
 * | plain object (prototype `Object.prototype` or `null`) | `{` + (`<s>` of the key + the value) for each own enumerable string key, sorted + `}`; a key holding `undefined` is kept, so `{ a: undefined }` differs from `{}` |
 * | `Map` | `M` + (key + value) per entry, sorted + `)` |
 * | `Set` | `S` + the elements, sorted + `)` |
 * | any object with a `[memoizeKey]()` method (arrays excepted) | `K` + `<s>` of the constructor's name (empty for a null prototype) + the encoding of what the method returns |
 *
 * @module
 */

import { describe } from "./_describe.ts";

/**
 * The method name by which a class gives its instances a cache key. The
 * method returns any encodable value (a string, a number, an array of them,
 * ...); two instances of the same class whose methods return equal values are
 * the same key. `@memoized` methods also use it to put `this` in the key
 * across processes.
 *
 * It is `Symbol.for("shm-cache.memoizeKey")`, so copies of this module in one
 * process agree on it.
 *
 * @example
 * ```ts
 * import { memoizeKey } from "./_key.ts";
 *
 * class UserId {
 *   constructor(readonly id: number) {}
 *   [memoizeKey](): number {
 *     return this.id;
 *   }
 * }
 * ```
 */
export const memoizeKey: unique symbol = Symbol.for("shm-cache.memoizeKey");

/** The deepest nesting of arrays, objects, maps and sets that a key may have. */
export const MAX_KEY_DEPTH = 100;

/**
 * Derives the default cache key of a list of arguments (see the module
 * documentation for the encoding).
 *
 * @param args The arguments of one call.
 * @returns A string that equals another call's key exactly when the arguments are equal as data.
 * @throws {TypeError} If an argument holds something that cannot be encoded faithfully;
 *   the message names the argument by its index, e.g.
 *   "memoize: argument 1 cannot be used in a key: functions are not encodable (at args[1].onDone)".
 *
 * @example
 * ```ts
 * import { deriveKey } from "./_key.ts";
 *
 * deriveKey([1, "1"]); // 'd1,s1:1'
 * deriveKey([{ b: 2, a: 1 }]) === deriveKey([{ a: 1, b: 2 }]); // true
 * ```
 */
export function deriveKey(args: ArrayLike<unknown>): string {
  const count = args.length;
  // The common case, one number or string, takes no loop and no tag switch.
  if (count === 1) {
    const only = args[0];
    if (typeof only === "number") return numberKey(only);
    if (typeof only === "string") return stringKey(only);
  }
  let key = "";
  for (let i = 0; i < count; i++) key += encodePart(args[i], i);
  return key;
}

/**
 * Encodes one value as a part of a key, for parts other than the arguments
 * (`@memoized` encodes `this` with it). The result is self-delimiting, so it
 * can be put in front of another key.
 *
 * @param value The value to encode.
 * @param label What the value is, for error messages, e.g. "this".
 * @throws {TypeError} If `value` cannot be encoded faithfully.
 *
 * @example
 * ```ts
 * import { encodeKeyPart } from "./_key.ts";
 *
 * encodeKeyPart(["a", 1], "this"); // '[s1:ad1,]'
 * ```
 */
export function encodeKeyPart(value: unknown, label: string): string {
  return encodePart(value, label);
}

/** Thrown inside the encoder; collects the path while it unwinds. */
class Unencodable {
  reason: string;
  /** Path segments, innermost first. */
  segments: string[] = [];
  constructor(reason: string) {
    this.reason = reason;
  }
}

/** Encodes one part; `part` is an argument index or a label such as "this", named only in errors. */
function encodePart(value: unknown, part: number | string): string {
  try {
    return encode(value, null);
  } catch (error) {
    if (!(error instanceof Unencodable)) throw error;
    const label = typeof part === "number" ? `argument ${part}` : part;
    const root = typeof part === "number" ? `args[${part}]` : part;
    const path = error.segments.reverse().join("");
    const where = path === "" ? "" : ` (at ${root}${path})`;
    throw new TypeError(`memoize: ${label} cannot be used in a key: ${error.reason}${where}`);
  }
}

/** `ancestors` are the containers being encoded around `value` (null at the top). */
function encode(value: unknown, ancestors: object[] | null): string {
  switch (typeof value) {
    case "number":
      return numberKey(value);
    case "string":
      return stringKey(value);
    case "boolean":
      return value ? "t" : "f";
    case "undefined":
      return "u";
    case "bigint":
      return "b" + value + ",";
    case "object":
      return value === null ? "n" : encodeObject(value, ancestors ?? []);
    case "function":
      throw new Unencodable("functions are not encodable");
    case "symbol":
      throw new Unencodable("symbols are not encodable");
  }
  throw new Unencodable(`values of type ${typeof value} are not encodable`);
}

function numberKey(value: number): string {
  // `String(-0)` is "0", so negative zero needs its own spelling.
  return value === 0 && 1 / value < 0 ? "d-0," : "d" + value + ",";
}

function stringKey(value: string): string {
  // A lone surrogate does not survive UTF-8 (it becomes U+FFFD), which would
  // merge keys in a shared cache; JSON.stringify escapes it as \udxxx.
  return isWellFormed(value) ? "s" + value.length + ":" + value : "w" + JSON.stringify(value);
}

const isWellFormed: (value: string) => boolean = typeof "".isWellFormed === "function"
  ? (value) => value.isWellFormed()
  : (value) =>
    !/[\ud800-\udfff]/.test(value) ||
    /^(?:[^\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/.test(value);

const ObjectPrototype = Object.prototype;
const ArrayPrototype = Array.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const getOwnPropertySymbols = Object.getOwnPropertySymbols;
const keys = Object.keys;
const propertyIsEnumerable = Object.prototype.propertyIsEnumerable;

function encodeObject(value: object, ancestors: object[]): string {
  if (ancestors.includes(value)) throw new Unencodable("cycles are not encodable");
  if (ancestors.length >= MAX_KEY_DEPTH) {
    throw new Unencodable(`nesting deeper than ${MAX_KEY_DEPTH} is not encodable`);
  }
  const proto = getPrototypeOf(value);
  if (proto === ArrayPrototype) return encodeArray(value as unknown[], ancestors);
  const custom = (value as { [memoizeKey]?: unknown })[memoizeKey];
  if (typeof custom === "function") {
    return encodeCustom(value, custom as (this: object) => unknown, ancestors);
  }
  if (proto === ObjectPrototype || proto === null) {
    return encodePlain(value as Record<string, unknown>, ancestors);
  }
  if (ArrayBuffer.isView(value)) {
    const bytes = value instanceof Uint8Array
      ? value
      : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const prefix = value instanceof Uint8Array ? "B" : "X" + stringKey(viewName(value));
    return prefix + bytes.length + ":" + hex(bytes);
  }
  if (proto === Date.prototype) return "D" + (value as Date).getTime() + ",";
  if (proto === Map.prototype) return encodeMap(value as Map<unknown, unknown>, ancestors);
  if (proto === Set.prototype) return encodeSet(value as Set<unknown>, ancestors);
  if (proto === ArrayBuffer.prototype) {
    const bytes = new Uint8Array(value as ArrayBuffer);
    return "A" + bytes.length + ":" + hex(bytes);
  }
  throw new Unencodable(
    `${describe(value).replace(/^an instance of (.*)$/, "instances of $1")} cannot be encoded ` +
      "(give the class a [memoizeKey]() method, or pass a key function)",
  );
}

function encodeArray(value: unknown[], ancestors: object[]): string {
  ancestors.push(value);
  let key = "[";
  // A plain index loop reads holes as undefined, which is how they are encoded.
  for (let i = 0; i < value.length; i++) {
    try {
      key += encode(value[i], ancestors);
    } catch (error) {
      throw addSegment(error, `[${i}]`);
    }
  }
  ancestors.pop();
  return key + "]";
}

function encodePlain(value: Record<string, unknown>, ancestors: object[]): string {
  const symbols = getOwnPropertySymbols(value);
  for (let i = 0; i < symbols.length; i++) {
    if (propertyIsEnumerable.call(value, symbols[i])) {
      throw new Unencodable(
        `symbol-keyed properties are not encodable (found ${symbols[i].toString()})`,
      );
    }
  }
  const names = keys(value);
  sortNames(names);
  ancestors.push(value);
  let key = "{";
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    try {
      key += stringKey(name) + encode(value[name], ancestors);
    } catch (error) {
      throw addSegment(error, propertySegment(name));
    }
  }
  ancestors.pop();
  return key + "}";
}

/**
 * Sorts property names by UTF-16 code units, as `Array.prototype.sort` does
 * by default; an insertion sort for the few names of a typical options object
 * is several times faster than the built-in sort.
 */
function sortNames(names: string[]): void {
  if (names.length > 16) {
    names.sort();
    return;
  }
  for (let i = 1; i < names.length; i++) {
    const name = names[i];
    let j = i - 1;
    while (j >= 0 && names[j] > name) {
      names[j + 1] = names[j];
      j--;
    }
    names[j + 1] = name;
  }
}

function encodeMap(value: Map<unknown, unknown>, ancestors: object[]): string {
  ancestors.push(value);
  const entries: string[] = [];
  for (const [entryKey, entryValue] of value) {
    let encodedKey: string;
    try {
      encodedKey = encode(entryKey, ancestors);
    } catch (error) {
      throw addSegment(error, `<Map key ${describe(entryKey)}>`);
    }
    try {
      entries.push(encodedKey + encode(entryValue, ancestors));
    } catch (error) {
      throw addSegment(error, `.get(${describe(entryKey)})`);
    }
  }
  ancestors.pop();
  // Encodings are prefix-free, so sorting the joined pairs sorts by key
  // first, and equal keys (distinct objects with equal content) by value.
  return "M" + entries.sort().join("") + ")";
}

function encodeSet(value: Set<unknown>, ancestors: object[]): string {
  ancestors.push(value);
  const elements: string[] = [];
  for (const element of value) {
    try {
      elements.push(encode(element, ancestors));
    } catch (error) {
      throw addSegment(error, `<Set element ${describe(element)}>`);
    }
  }
  ancestors.pop();
  return "S" + elements.sort().join("") + ")";
}

function encodeCustom(
  value: object,
  method: (this: object) => unknown,
  ancestors: object[],
): string {
  const name = (getPrototypeOf(value)?.constructor as { name?: unknown } | undefined)?.name;
  ancestors.push(value);
  let key: string;
  try {
    key = "K" + stringKey(typeof name === "string" ? name : "") +
      encode(method.call(value), ancestors);
  } catch (error) {
    throw addSegment(error, "[memoizeKey]()");
  }
  ancestors.pop();
  return key;
}

function addSegment(error: unknown, segment: string): unknown {
  if (error instanceof Unencodable) error.segments.push(segment);
  return error;
}

function propertySegment(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? "." + name : `[${JSON.stringify(name)}]`;
}

function viewName(view: ArrayBufferView): string {
  const tag = (view as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  return typeof tag === "string" ? tag : "DataView";
}

const HEX_DIGITS: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const nativeToHex = (Uint8Array.prototype as { toHex?: () => string }).toHex;

function hex(bytes: Uint8Array): string {
  if (nativeToHex !== undefined) return nativeToHex.call(bytes);
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += HEX_DIGITS[bytes[i]];
  return text;
}
