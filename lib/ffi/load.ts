/**
 * Finds, builds if needed, and opens the native library, once per process,
 * with the binding of the runtime in use (detected here and nowhere else).
 *
 * Search order: the `SHM_CACHE_LIB` environment variable (an explicit
 * path); the repository's build output `zig/zig-out/lib/`; failing both,
 * a build with the repository's pinned Zig (`.tools/zig`, installed by
 * `scripts/setup.sh`), announced on stderr. If none works, a
 * `CacheError` with code `LibraryNotFound` says how to build it.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { CacheError } from "../errors.ts";
import { type BunFfi, openBun } from "./bun.ts";
import { openDeno } from "./deno.ts";
import { ABI_VERSION, type Native } from "./symbols.ts";

/** The runtime running this module. */
// deno-lint-ignore no-explicit-any
export const runtime: "deno" | "bun" = (globalThis as any).Deno ? "deno" : "bun";

const BUN_FFI = "bun:ffi";
const bunFfi: BunFfi | undefined = runtime === "bun" ? await import(BUN_FFI) : undefined;

const LIB_FILE = process.platform === "darwin" ? "libshm_cache.dylib" : "libshm_cache.so";
const root = fileURLToPath(new URL("../../", import.meta.url));
const builtPath = `${root}zig/zig-out/lib/${LIB_FILE}`;
const zigPath = `${root}.tools/zig/ziglang/zig`;

let native: Native | undefined;

function envPath(): string | undefined {
  try {
    const value = process.env.SHM_CACHE_LIB;
    return value === undefined || value === "" ? undefined : value;
  } catch {
    return undefined; // no env permission: fall through to the build output
  }
}

const HOW_TO_BUILD =
  "build it with `bash scripts/setup.sh` (installs the pinned Zig from PyPI and runs " +
  "`zig build -Doptimize=ReleaseFast` in zig/), or set SHM_CACHE_LIB to the library's path";

function build(): void {
  if (!existsSync(zigPath)) {
    throw new CacheError(
      "LibraryNotFound",
      `shm-cache: native library not found at ${builtPath}; ${HOW_TO_BUILD}`,
    );
  }
  process.stderr.write(`shm-cache: native library missing; building it with ${zigPath} ...\n`);
  try {
    execFileSync(zigPath, ["build", "-Doptimize=ReleaseFast"], {
      cwd: `${root}zig`,
      stdio: ["ignore", "inherit", "inherit"],
    });
  } catch (cause) {
    throw new CacheError(
      "LibraryNotFound",
      `shm-cache: building the native library failed; ${HOW_TO_BUILD}`,
      { cause },
    );
  }
}

function locate(): string {
  const explicit = envPath();
  if (explicit !== undefined) {
    if (!existsSync(explicit)) {
      throw new CacheError(
        "LibraryNotFound",
        `shm-cache: SHM_CACHE_LIB points to ${explicit}, which does not exist`,
      );
    }
    return explicit;
  }
  if (!existsSync(builtPath)) build();
  return builtPath;
}

/** The native library, loaded on first use. */
export function loadNative(): Native {
  if (native !== undefined) return native;
  const path = locate();
  const lib = bunFfi ? openBun(bunFfi, path) : openDeno(path);
  const abi = lib.shmc_abi_version();
  if (abi !== ABI_VERSION) {
    throw new CacheError(
      "LibraryNotFound",
      `shm-cache: ${path} has ABI version ${abi}, this module needs ${ABI_VERSION}; rebuild it (${HOW_TO_BUILD})`,
    );
  }
  native = lib;
  return lib;
}
