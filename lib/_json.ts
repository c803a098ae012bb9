/**
 * Strict JSON for the default codec: a value is stored as JSON text only if
 * `JSON.parse` gives it back exactly; anything else is a `TypeError` naming
 * the path inside the value, never a silent change.
 *
 * What JSON would change, and what happens instead:
 *
 * | inside the value | JSON alone | here |
 * | --- | --- | --- |
 * | `NaN`, `Infinity`, `-Infinity` | `null` | TypeError |
 * | `-0` | `0` | TypeError |
 * | `undefined` or a hole in an array | `null` | TypeError |
 * | a property whose value is `undefined` | dropped | dropped (documented) |
 * | a function or a symbol | dropped (`null` in arrays) | TypeError |
 * | `bigint` | exception | TypeError |
 * | `Date` | its ISO string | TypeError |
 * | `Map`, `Set`, `RegExp`, typed arrays, `ArrayBuffer` | `{}` or a keyed object | TypeError (`codec: "structured"` stores them) |
 * | `Promise`, a class instance, a boxed primitive | `{}` or its fields, prototype lost | TypeError |
 * | an object with a `toJSON` method (not `Date`) | `toJSON()`'s result | `toJSON()`'s result, checked the same way |
 * | a cycle | exception | TypeError |
 * | an object with a null prototype | a plain object | a plain object (documented) |
 *
 * The check costs one walk of the value before `JSON.stringify` (about a
 * quarter of stringify's own time on a small object, bench/codec_bench.ts);
 * only a value that fails it, or uses `toJSON`, takes the slow path, which
 * finds the path of the problem or builds the `toJSON`-applied copy.
 *
 * @module
 */

import { describe } from "./_describe.ts";

/** Nesting beyond this takes the slow path (which also finds cycles). */
const FAST_DEPTH_MAX = 64;

const ObjectPrototype = Object.prototype;
const ArrayPrototype = Array.prototype;
const getPrototypeOf = Object.getPrototypeOf;

/** Types that `codec: "structured"` stores exactly. */
const STRUCTURED_TYPES = new Set([
  "Date",
  "Map",
  "Set",
  "RegExp",
  "ArrayBuffer",
  "Int8Array",
  "Uint8Array",
  "Uint8ClampedArray",
  "Int16Array",
  "Uint16Array",
  "Int32Array",
  "Uint32Array",
  "Float32Array",
  "Float64Array",
  "BigInt64Array",
  "BigUint64Array",
]);
const USE_STRUCTURED = '; use codec: "structured"';

/**
 * Whether JSON gives `value` back exactly with nothing to call: finite
 * numbers other than -0, strings, booleans, null, dense arrays and plain
 * objects of those without `toJSON`. With `keepUndefined` (for the
 * structured codec), a property whose value is `undefined` also fails (JSON
 * would drop it), as do a null prototype (JSON would give back
 * `Object.prototype`) and an object met twice (JSON would give back two
 * copies).
 *
 * @example
 * ```ts
 * import { isExactJson } from "./_json.ts";
 *
 * isExactJson({ a: [1, "x"] }, false); // true
 * isExactJson({ a: NaN }, false); // false
 * ```
 */
export function isExactJson(value: unknown, keepUndefined: boolean): boolean {
  return exact(value, 0, keepUndefined ? new Set() : null);
}

/** `seen` collects the objects met, when shared references must stay shared. */
function exact(value: unknown, depth: number, seen: Set<object> | null): boolean {
  const keepUndefined = seen !== null;
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      // Finite (NaN - NaN and Infinity - Infinity are NaN) and not -0.
      return value - value === 0 && (value !== 0 || 1 / value > 0);
    case "object": {
      if (value === null) return true;
      if (depth >= FAST_DEPTH_MAX) return false;
      if (seen !== null) {
        if (seen.has(value)) return false;
        seen.add(value);
      }
      const proto = getPrototypeOf(value);
      if (proto === ArrayPrototype) {
        const array = value as unknown[];
        if ((array as { toJSON?: unknown }).toJSON !== undefined) return false;
        for (let i = 0; i < array.length; i++) {
          // A hole reads as undefined, which fails below.
          if (!exact(array[i], depth + 1, seen)) return false;
        }
        return true;
      }
      if (proto !== ObjectPrototype && (proto !== null || keepUndefined)) return false;
      const record = value as Record<string, unknown>;
      if (record.toJSON !== undefined) return false;
      for (const name in record) {
        const item = record[name];
        if (item === undefined) {
          if (keepUndefined) return false;
          continue;
        }
        if (!exact(item, depth + 1, seen)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * The JSON text of `value`, exact, or a TypeError naming the path of what
 * JSON cannot give back.
 *
 * @param value An object or array (the codec stores primitives itself).
 * @throws {TypeError} E.g. `value.m: Map is not storable; use codec: "structured"`.
 *
 * @example
 * ```ts
 * import { exactJsonText } from "./_json.ts";
 *
 * exactJsonText({ a: 1 }); // '{"a":1}'
 * exactJsonText({ a: NaN }); // TypeError: value.a: NaN is not storable as JSON (it reads back as null); use codec: "structured"
 * ```
 */
export function exactJsonText(value: object): string {
  if (exact(value, 0, null)) return JSON.stringify(value);
  // The slow path: toJSON applied once, every problem reported by path.
  return JSON.stringify(copy(value, "", "value", [], false));
}

/**
 * A copy of `value` that JSON stores exactly, with `toJSON` applied as
 * JSON.stringify would apply it; `ancestors` are the containers around it.
 */
function copy(
  value: unknown,
  key: string,
  path: string,
  ancestors: object[],
  inObject: boolean,
): unknown {
  if ((typeof value === "object" && value !== null) || typeof value === "bigint") {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    // Date's and Buffer's own toJSON change the type: not honoured.
    if (typeof toJSON === "function" && !(value instanceof Date || value instanceof Uint8Array)) {
      value = toJSON.call(value, key);
      // Dropped from an object, as JSON drops it.
      if (value === undefined && inObject) return undefined;
    }
  }
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (value !== value || value === Infinity || value === -Infinity) {
        throw new TypeError(
          `${path}: ${value} is not storable as JSON (it reads back as null)${USE_STRUCTURED}`,
        );
      }
      if (value === 0 && 1 / value < 0) {
        throw new TypeError(
          `${path}: -0 is not storable as JSON (it reads back as 0)${USE_STRUCTURED}`,
        );
      }
      return value;
    case "undefined":
      if (ancestors.length === 0) throw new TypeError(`${path}: toJSON returned undefined`);
      throw new TypeError(
        `${path}: undefined (or a hole) in an array is not storable as JSON (it reads back as null)${USE_STRUCTURED}`,
      );
    case "bigint":
      throw new TypeError(
        `${path}: a bigint inside an object or array is not storable as JSON${USE_STRUCTURED}`,
      );
    case "function":
    case "symbol":
      throw new TypeError(`${path}: ${describe(value)} is not storable`);
    case "object":
      if (value === null) return null;
      return copyObject(value, path, ancestors);
  }
  throw new TypeError(`${path}: ${describe(value)} is not storable`);
}

function copyObject(value: object, path: string, ancestors: object[]): unknown {
  const at = ancestors.indexOf(value);
  if (at >= 0) {
    throw new TypeError(
      `${path}: a cycle (back to an enclosing object) is not storable as JSON${USE_STRUCTURED}`,
    );
  }
  const proto = getPrototypeOf(value);
  if (proto === ArrayPrototype) {
    const array = value as unknown[];
    const out: unknown[] = new Array(array.length);
    ancestors.push(value);
    for (let i = 0; i < array.length; i++) {
      out[i] = copy(array[i], String(i), `${path}[${i}]`, ancestors, false);
    }
    ancestors.pop();
    return out;
  }
  if (proto !== ObjectPrototype && proto !== null) {
    const name = typeof proto?.constructor === "function" ? proto.constructor.name : "";
    if (STRUCTURED_TYPES.has(name) || (name === "Buffer" && value instanceof Uint8Array)) {
      throw new TypeError(`${path}: ${name} is not storable${USE_STRUCTURED}`);
    }
    throw new TypeError(
      `${path}: ${describe(value)} is not storable (only plain objects and arrays are; ` +
        "a class can define toJSON)",
    );
  }
  // A null prototype: a key "__proto__" stays an ordinary property.
  const out: Record<string, unknown> = Object.create(null);
  ancestors.push(value);
  const record = value as Record<string, unknown>;
  for (const name of Object.keys(record)) {
    const item = record[name];
    // A property holding undefined is dropped, as JSON drops it (documented).
    if (item === undefined) continue;
    const converted = copy(item, name, path + segment(name), ancestors, true);
    // toJSON may return undefined: dropped as well.
    if (converted !== undefined) out[name] = converted;
  }
  ancestors.pop();
  return out;
}

/** `.name` or `["odd name"]`. */
export function segment(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? "." + name : `[${JSON.stringify(name)}]`;
}
