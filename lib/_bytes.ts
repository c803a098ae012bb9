/**
 * Byte sizes as users write them: a number of bytes, or a string such as
 * `"64mb"`, `"1.5 MiB"` or `"512k"` (issue 10: `maxBytes`, sized like
 * `lua_shared_dict cache 64m`). Every unit is binary (1024), as nginx reads
 * them; fractions are floored to whole bytes.
 *
 * @module
 */

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

/**
 * The number of bytes `value` stands for, between `min` and `max`
 * inclusive; a `RangeError` naming `name`, the limits and the value
 * otherwise.
 *
 * @example
 * ```ts
 * parseBytes("maxBytes", "64mb", 1 << 20, 2 ** 38); // 67108864
 * ```
 */
export function parseBytes(name: string, value: unknown, min: number, max: number): number {
  let bytes: number;
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(
        `${name} must be a number of bytes or a string such as "64mb", got ${value}`,
      );
    }
    bytes = Math.floor(value);
  } else if (typeof value === "string") {
    const m = SIZE_RE.exec(value);
    const unit = m === null ? undefined : UNITS[m[2].toLowerCase()];
    if (m === null || unit === undefined) {
      throw new RangeError(
        `${name} must be a number of bytes or a string such as "64mb" (units b, k, kb, kib, m, mb, mib, g, gb, gib), got ${
          JSON.stringify(value)
        }`,
      );
    }
    bytes = Math.floor(Number(m[1]) * unit);
  } else {
    throw new TypeError(
      `${name} must be a number of bytes or a string such as "64mb", got ${typeof value}`,
    );
  }
  if (bytes < min || bytes > max) {
    throw new RangeError(
      `${name} must be between ${min} and ${max} bytes, got ${bytes} (${JSON.stringify(value)})`,
    );
  }
  return bytes;
}
