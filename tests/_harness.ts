/**
 * One test registration function for both runtimes.
 *
 * `deno test` provides `Deno.test`; `bun test` provides `bun:test`. The Bun
 * module is imported through a variable so that Deno's type checker never
 * tries to resolve the `bun:` scheme.
 */
const BUN_TEST = "bun:test";
// deno-lint-ignore no-explicit-any
const denoNs = (globalThis as any).Deno as
  | {
    test(
      def: {
        name: string;
        fn: () => unknown;
        sanitizeResources: boolean;
        sanitizeOps: boolean;
        ignore?: boolean;
      },
    ): void;
  }
  | undefined;
const bunTest = denoNs ? undefined : await import(BUN_TEST);

/** Options of one test. */
export interface TestOptions {
  /** Upper bound of the test's duration in milliseconds (Bun enforces it; Deno relies on the test's own bounds). */
  timeoutMs?: number;
  /** Skip the test (the caller prints why). */
  ignore?: boolean;
  /**
   * Why the test cannot run here (no root, no `unshare`...), or undefined to
   * run it. A reason skips the test: it is reported as skipped, with the
   * reason printed, never counted as passed.
   */
  skip?: string;
}

/** Registers `fn` as a test under whichever runtime runs the file. */
export function test(
  name: string,
  fn: () => unknown | Promise<unknown>,
  options: TestOptions = {},
): void {
  if (options.skip !== undefined) {
    console.log(`skipped: ${name}: ${options.skip}`);
    options = { ...options, ignore: true };
  }
  if (denoNs) {
    denoNs.test({
      name,
      fn,
      sanitizeResources: false,
      sanitizeOps: false,
      ignore: options.ignore ?? false,
    });
  } else if (options.ignore) {
    bunTest.test.skip(name, fn);
  } else {
    bunTest.test(name, fn, options.timeoutMs ?? 60_000);
  }
}

/** The runtime running this file. */
export const runtime: "deno" | "bun" = denoNs ? "deno" : "bun";
