/**
 * The two sides of the C ABI agree on every shared number, the release
 * library holds no test entry point, and one process cannot take every
 * handle slot of a cache.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CacheError, SharedCache } from "../mod.ts";
import { CONSTANTS, constantsMismatch, type Native } from "../lib/ffi/symbols.ts";
import { loadNative } from "../lib/ffi/load.ts";
import { test } from "./_harness.ts";
import { root, Scope } from "./_proc.ts";

/** A library whose shmc_constants answers `numbers`. */
function fake(numbers: number[]): Native {
  return {
    shmc_constants(out: Uint32Array, cap: number): number {
      out.set(numbers.slice(0, cap));
      return numbers.length;
    },
  } as unknown as Native;
}

test("every shared number is checked at load, and the first difference is named", () => {
  const ours = Object.values(CONSTANTS) as number[];
  assert.equal(constantsMismatch(loadNative()), undefined);
  assert.equal(constantsMismatch(fake(ours)), undefined);
  const stride = Object.keys(CONSTANTS).indexOf("memoStride");
  const other = ours.slice();
  other[stride] = 7;
  assert.equal(constantsMismatch(fake(other)), "memoStride: library 7, module 6");
  assert.equal(
    constantsMismatch(fake([...ours, 1])),
    `number of constants: library ${ours.length + 1}, module ${ours.length}`,
  );
});

test("the release library exports no test entry point, and SharedCache has no test members", () => {
  const so = ["libshm_cache.so", "libshm_cache.dylib"]
    .map((f) => join(root, "zig/zig-out/lib", f))
    .find((p) => existsSync(p));
  assert.ok(so, "the release library is built");
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  if (deno !== undefined) {
    assert.throws(() =>
      deno.dlopen(so, { shmc_test_fault: { parameters: ["u32"], result: "void" } })
    );
  }
  const members = Object.getOwnPropertyNames(SharedCache.prototype);
  assert.deepEqual(members.filter((m) => m.startsWith("_")), []);
});

test("one process holds at most 256 handles of a cache; others still open it", async () => {
  const scope = new Scope();
  const handles: SharedCache[] = [];
  // The geometry tests/fixtures/child.ts opens with.
  const options = { capacity: 1000, maxKeyBytes: 64, maxValueBytes: 256, dir: scope.dir };
  try {
    // A careless loop that never closes (no finalizer runs inside it).
    for (let i = 0; i < 256; i++) handles.push(SharedCache.open("cap", options));
    assert.throws(
      () => SharedCache.open("cap", options),
      (e: unknown) =>
        e instanceof CacheError && e.code === "TooManyHandles" &&
        /already holds 256 handles of cache cap, the most one process may hold; close handles/.test(
          e.message,
        ),
    );
    handles[0].set("k", "v");
    // Another process is not locked out.
    const child = scope.spawn("bun", ["read", scope.dir, "cap", "k", "0"]);
    await child.line("found");
    assert.equal((await child.wait()).code, 0);
    // Closing one lets this process open one again.
    handles.shift()!.close();
    handles.push(SharedCache.open("cap", options));
    assert.equal(handles.at(-1)!.get("k"), "v");
  } finally {
    for (const h of handles) h.close();
    await scope.cleanup();
  }
});
