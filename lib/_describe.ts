/**
 * A short description of a value for error messages, which name the thing and
 * the value ("capacity must be a positive integer, got 0").
 *
 * @module
 */

/**
 * Describes `value` in a few words: strings quoted and cut at 40 chars,
 * objects by their constructor.
 *
 * @example
 * ```ts
 * import { describe } from "./_describe.ts";
 *
 * describe(0); // "0"
 * describe("a"); // "\"a\""
 * describe(new Map()); // "an instance of Map"
 * ```
 */
export function describe(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value);
    case "bigint":
      return `${value}n`;
    case "function":
      return `function ${value.name || "(anonymous)"}`;
    case "symbol":
      return value.toString();
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) return "an array";
      const proto = Object.getPrototypeOf(value);
      if (proto === null || proto === Object.prototype) return "an object";
      const name = typeof proto.constructor === "function" ? proto.constructor.name : "";
      return name ? `an instance of ${name}` : "an object of an anonymous class";
    }
    default:
      return String(value);
  }
}
