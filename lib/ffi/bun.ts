/**
 * The symbol table in `bun:ffi`'s shape. The `bun:ffi` module is handed in
 * by `load.ts` (imported there through a variable, so Deno never resolves
 * the `bun:` scheme).
 *
 * @module
 */

import { type Native, symbols } from "./symbols.ts";

/** The part of `bun:ffi` used here. */
export interface BunFfi {
  dlopen(
    path: string,
    defs: Record<string, { args: string[]; returns: string }>,
  ): { symbols: unknown };
}

const BUN_TYPES: Record<string, string> = {
  pointer: "ptr",
  buffer: "ptr",
  u32: "u32",
  i32: "i32",
  f64: "f64",
  void: "void",
};

function bunType(t: string): string {
  const mapped = BUN_TYPES[t];
  if (mapped === undefined) throw new TypeError(`no bun:ffi type for ${t}`);
  return mapped;
}

/** Opens the library at `path` with `bun:ffi`'s `dlopen`. */
export function openBun(ffi: BunFfi, path: string): Native {
  const defs: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, def] of Object.entries(symbols)) {
    defs[name] = {
      args: (def.parameters as readonly string[]).map(bunType),
      returns: bunType(def.result),
    };
  }
  return ffi.dlopen(path, defs).symbols as Native;
}
