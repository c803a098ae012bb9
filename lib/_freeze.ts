/**
 * Deep freezing for `immutable: true`: a value the decode memo shares
 * between hits must not be changed by one caller under another's feet.
 *
 * Only plain objects and arrays can be frozen for good: `Object.freeze`
 * leaves a `Map`, a `Set` or a `Date` mutable through its methods, throws on
 * a non-empty typed array, and makes a global `RegExp` unusable (`exec`
 * writes `lastIndex`). A value holding one of those is not frozen at all and
 * not shared: each hit decodes it afresh.
 *
 * @module
 */

const ObjectPrototype = Object.prototype;
const ArrayPrototype = Array.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const freeze = Object.freeze;

/**
 * Freezes a value that `JSON.parse` returned (plain objects and arrays only).
 *
 * @example
 * ```ts
 * import { freezeJson } from "./_freeze.ts";
 *
 * const v = freezeJson(JSON.parse('{"a":[1]}')) as { a: number[] };
 * Object.isFrozen(v.a); // true
 * ```
 */
export function freezeJson(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) freezeJson(value[i]);
  } else {
    const record = value as Record<string, unknown>;
    for (const name in record) freezeJson(record[name]);
  }
  return freeze(value);
}

/**
 * Freezes `value` deeply if it holds only primitives, plain objects (null
 * prototypes included) and arrays, cycles allowed.
 *
 * @returns Whether it froze `value`; if not, nothing in it was frozen.
 *
 * @example
 * ```ts
 * import { freezeIfPlain } from "./_freeze.ts";
 *
 * freezeIfPlain({ a: 1 }); // true
 * freezeIfPlain({ m: new Map() }); // false, and nothing frozen
 * ```
 */
export function freezeIfPlain(value: unknown): boolean {
  const seen = new Set<object>();
  if (!plain(value, seen)) return false;
  for (const object of seen) freeze(object);
  return true;
}

function plain(value: unknown, seen: Set<object>): boolean {
  if (typeof value !== "object" || value === null) return typeof value !== "function";
  if (seen.has(value)) return true;
  const proto = getPrototypeOf(value);
  if (proto !== ArrayPrototype && proto !== ObjectPrototype && proto !== null) return false;
  seen.add(value);
  const record = value as Record<string, unknown>;
  for (const name of Object.keys(record)) if (!plain(record[name], seen)) return false;
  return true;
}
