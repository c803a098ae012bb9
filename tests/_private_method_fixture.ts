/**
 * A class with a `@memoized` #private method, loaded by memoize_test.ts under
 * Bun only: Deno 2.9.6 transpiles a decorated private method with parameters
 * into a getter with parameters, a SyntaxError when the module loads (swc bug,
 * fixed upstream in swc-project/swc#12161).
 */
import { memoized } from "../lib/memoize.ts";

/** Counts the calls of its memoized private method. */
export class Vault {
  calls = 0;

  @memoized()
  #secret(n: number): number {
    this.calls++;
    return n * 3;
  }

  /** Calls the private method. */
  reveal(n: number): number {
    return this.#secret(n);
  }
}
