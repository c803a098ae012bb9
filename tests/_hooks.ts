/**
 * The fault points of the test build of the native library, for the crash
 * tests. `scripts/test.sh` builds it (zig/zig-out/test/) and hands it to the
 * suites as `SHM_CACHE_LIB`, which the module's loader then loads; this file
 * opens the same file again for its one extra symbol, and the dynamic linker
 * hands back the instance already loaded, so the step set here is the one the
 * process's handles see. The release library has no such symbol, and
 * `SharedCache` no test members.
 *
 * @module
 */

import { inspectCache } from "../mod.ts";

/** Why the fault tests cannot run here, or undefined when they can. */
export const faultsUnavailable: string | undefined = (() => {
  const path = process.env.SHM_CACHE_LIB;
  if (path === undefined || !path.includes("/zig-out/test/")) {
    return "fault tests need the test build of the library: run bash scripts/test.sh (it sets SHM_CACHE_LIB)";
  }
  return undefined;
})();

const SYMBOL = { shmc_test_fault: { parameters: ["u32"], result: "void" } } as const;

let setStep: ((step: number) => void) | undefined;

async function open(path: string): Promise<(step: number) => void> {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  if (deno !== undefined) {
    const lib = deno.dlopen(path, SYMBOL);
    return (step) => lib.symbols.shmc_test_fault(step);
  }
  // A variable, so that Deno never resolves the `bun:` scheme.
  const spec = "bun:ffi";
  const ffi = await import(spec);
  const lib = ffi.dlopen(path, { shmc_test_fault: { args: ["u32"], returns: "void" } });
  return (step) => lib.symbols.shmc_test_fault(step);
}

/**
 * Parks the next writer of this process at fault point `step`
 * (zig/src/faults.zig `Fault`; or'ed with 0x100 it stops itself with
 * SIGSTOP instead). Throws, naming the reason, outside the test build.
 */
export async function testFault(step: number): Promise<void> {
  if (faultsUnavailable !== undefined) throw new Error(faultsUnavailable);
  setStep ??= await open(process.env.SHM_CACHE_LIB!);
  setStep(step);
}

/** True while a writer of cache `name` is mid-mutation (its seqlock is odd). */
export function writerActive(name: string, dir: string): boolean {
  return inspectCache(name, { dir }).writerActive;
}
