/**
 * The symbol table in Deno's shape: `Deno.dlopen` takes it as it is.
 *
 * @module
 */

import { type Native, symbols } from "./symbols.ts";

/** Opens the library at `path` with `Deno.dlopen`. */
export function openDeno(path: string): Native {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  const lib = deno.dlopen(path, symbols satisfies Deno.ForeignLibraryInterface);
  return lib.symbols as unknown as Native;
}
