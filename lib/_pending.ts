/**
 * `@std/cache`'s `memoize` stores an asynchronous result at once, as its
 * record `{ kind: "promise", value: promise }`. A promise cannot cross
 * processes, so `SharedCache.set` keeps such a record for the handle that
 * set it, and stores it once the promise resolves, with the result in the
 * promise's place. A promise anywhere else (a bare promise, or inside any
 * other value) stays the codec's `TypeError`.
 *
 * @module
 */

/** @std/cache's record of a pending result. */
export interface PromiseRecord {
  kind: "promise";
  value: Promise<unknown>;
}

/** Whether `value` is `{ kind: "promise", value: <promise> }`, a plain object with those two keys only. */
export function isPromiseRecord(value: unknown): value is PromiseRecord {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const record = value as { kind?: unknown; value?: unknown };
  return record.kind === "promise" && record.value instanceof Promise &&
    Object.keys(value).length === 2;
}

/** The record to store once its promise resolves; rejects if it rejects. */
export async function settle(record: PromiseRecord): Promise<unknown> {
  return { kind: "promise", value: await record.value };
}
