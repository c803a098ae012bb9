/**
 * The text of `codec: "structured"`: devalue's format, which gives back
 * exactly what structured clone would (Date, Map, Set, RegExp, bigint,
 * typed arrays, ArrayBuffer, NaN, Infinity, -0, undefined in arrays and
 * objects, holes, null prototypes, repeated references and cycles), as
 * plain JSON-shaped text that Deno and Bun produce byte for byte alike.
 *
 * Chosen over msgpackr and cbor-x (which lmdb-js uses), measured in
 * bench/codec_bench.ts: both are faster on rich values but silently turn
 * -0 into 0, holes into undefined, lone surrogates into U+FFFD and null
 * prototypes into Object.prototype, and cbor-x's native decoder does not
 * load in Deno. devalue loses nothing of the above and is plain JavaScript.
 *
 * @module
 */

import { parse, stringify } from "devalue";
import { describe } from "./_describe.ts";

/**
 * The structured text of `value`.
 *
 * @throws {TypeError} Naming the path, for what structured clone cannot copy either:
 *   functions, symbols, promises, class instances, symbol-keyed properties.
 *
 * @example
 * ```ts
 * import { structuredText } from "./_structured.ts";
 *
 * structuredText({ d: new Date(0) }); // '[{"d":1},["Date","1970-01-01T00:00:00.000Z"]]'
 * ```
 */
export function structuredText(value: unknown): string {
  try {
    return stringify(value);
  } catch (error) {
    const e = error as { name?: unknown; path?: unknown; value?: unknown; message?: unknown };
    if (e?.name !== "DevalueError") throw error;
    const path = `value${typeof e.path === "string" ? e.path : ""}`;
    throw new TypeError(
      `${path}: ${describe(e.value)} is not storable by the structured codec (${
        String(e.message)
      })`,
    );
  }
}

/** Parses text written by {@linkcode structuredText}. */
export function parseStructured(text: string): unknown {
  return parse(text);
}
