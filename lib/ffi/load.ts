/**
 * Finds and opens the native library, once per process, with the binding of
 * the runtime in use (detected here and nowhere else).
 *
 * Search order, first match wins:
 * 1. `SHM_CACHE_LIB`, an explicit path (compiled apps, custom builds), or
 *    a library embedded in a `bun build --compile` executable (given to
 *    `bun build` as an extra entry point: `Bun.embeddedFiles`);
 * 2. the repository's build output `zig/zig-out/lib/` (development);
 * 3. the installed platform package for this OS, CPU and C library
 *    (`@shm-cache/linux-x64-gnu`, ...; see `platform.ts`);
 * 4. a build from source with the repository's `.tools/` Zig or a `zig` on
 *    `PATH`, only where the sources are next to this module.
 *
 * The platform package is found in one of two ways, because this one source
 * runs in three places:
 * - from `node_modules` (npm, Bun, or Deno with `npm:shm-cache`), by
 *   resolving `@shm-cache/<platform>/<file>` with `createRequire` as a
 *   Node-style dependency of this package;
 * - from a remote URL (JSR, or `mod.ts` over http), where nothing resolves
 *   bare names: Deno imports the platform package's manifest through the
 *   `npm:` specifier written out in `platform_packages.js` (which `deno install` sees
 *   and caches) and then resolves the library beside it. This needs a
 *   dynamic import, so it happens once at module load, under Deno, for a
 *   module that is not a `file:` URL.
 * Nothing at module top level assumes a `file:` URL. After opening, the ABI
 * version is checked. Under Deno, loading needs `--allow-ffi`, `--allow-read`
 * and `--allow-env` only (a build from source also needs `--allow-run` and
 * `--allow-write`).
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { CacheError } from "../errors.ts";
import { type BunFfi, openBun } from "./bun.ts";
import { openDeno } from "./deno.ts";
import { currentPlatform, describeCurrent, libraryFile, packageName, VERSION } from "./platform.ts";
import { platformPackages } from "./platform_packages.js";
import { ABI_VERSION, constantsMismatch, type Native } from "./symbols.ts";

/** The runtime running this module. */
// deno-lint-ignore no-explicit-any
export const runtime: "deno" | "bun" = (globalThis as any).Deno ? "deno" : "bun";

// Bun's synchronous `import.meta.require`: Deno never sees a `bun:` import
// to resolve, and `deno publish` has no dynamic import it cannot analyze.
const bunFfi: BunFfi | undefined = runtime === "bun"
  ? (import.meta as unknown as { require(id: string): BunFfi }).require("bun:ffi")
  : undefined;

const LIB_FILE = libraryFile(process.platform);
const isFileModule = import.meta.url.startsWith("file:");

/** A candidate library and where it came from, for messages. */
interface Found {
  path: string;
  source: string;
}

/** The outcome of the remote (JSR) platform-package lookup, made at load. */
// It never throws: importing this module must work without the library
// (MemoryCache needs none), so a failure becomes a line of the error.
const remotePackage: Found | string | undefined = runtime === "deno" && !isFileModule
  ? await importPlatformPackage()
  : undefined;

async function importPlatformPackage(): Promise<Found | string> {
  let name = "the platform package";
  try {
    const platform = currentPlatform();
    if (platform === undefined) return `no package is built for ${describeCurrent()}`;
    name = `${packageName(platform)}@${VERSION}`;
    const pkg = platformPackages[platform.key];
    if (pkg === undefined) return `${name} is not among this module's npm: specifiers`;
    await pkg.manifest();
    const url = pkg.library();
    return { path: fileURLToPath(url), source: `the platform package ${name}` };
  } catch (error) {
    return `${name} could not be imported (${String(error)})`;
  }
}

let native: Native | undefined;

function envPath(): string | undefined {
  try {
    const value = process.env.SHM_CACHE_LIB;
    return value === undefined || value === "" ? undefined : value;
  } catch {
    return undefined; // no env permission: fall through
  }
}

/** The repository root when this module is a file in a checkout with the sources. */
function repositoryRoot(): string | undefined {
  if (!isFileModule) return undefined;
  const root = fileURLToPath(new URL("../../", import.meta.url));
  return existsSync(`${root}zig/shm_cache.rsp`) ? root : undefined;
}

/** The installed platform package, resolved as a dependency of this package. */
function installedPackage(tried: string[]): Found | undefined {
  if (!isFileModule) {
    if (typeof remotePackage === "object") return remotePackage;
    tried.push(remotePackage ?? `${import.meta.url} is remote and this is not Deno`);
    return undefined;
  }
  const platform = currentPlatform();
  if (platform === undefined) {
    tried.push(`no platform package is built for ${describeCurrent()}`);
    return undefined;
  }
  const name = packageName(platform);
  try {
    // Node's resolution from this file: works in node_modules under Bun and
    // under Deno (npm: packages), and throws anywhere else.
    const path = createRequire(import.meta.url).resolve(`${name}/${LIB_FILE}`);
    if (existsSync(path)) return { path, source: `the platform package ${name}` };
    tried.push(`the platform package ${name} resolves to ${path}, which does not exist`);
  } catch {
    tried.push(`the platform package ${name} is not installed`);
  }
  return undefined;
}

/** The repository's Zig, else one on PATH; undefined if neither runs. */
function findZig(root: string): string | undefined {
  const candidates = [`${root}.tools/zig/ziglang/zig`, "zig"];
  for (const zig of candidates) {
    try {
      execFileSync(zig, ["version"], { stdio: ["ignore", "pipe", "ignore"] });
      return zig;
    } catch {
      // not there, or no run permission: try the next
    }
  }
  return undefined;
}

/** Builds the library from the repository's sources, as scripts/native.sh does. */
function buildFromSource(root: string, tried: string[]): Found | undefined {
  const zig = findZig(root);
  if (zig === undefined) {
    tried.push("no Zig in the repository's .tools/ or on PATH to build from source");
    return undefined;
  }
  const out = `zig-out/lib/${LIB_FILE}`;
  process.stderr.write(`shm-cache: native library missing; building it with ${zig} ...\n`);
  try {
    execFileSync(zig, ["build-lib", "@shm_cache.rsp", "-O", "ReleaseFast", `-femit-bin=${out}`], {
      cwd: `${root}zig`,
      stdio: ["ignore", "inherit", "inherit"],
    });
  } catch (error) {
    tried.push(`building from source with ${zig} failed (${String(error)})`);
    return undefined;
  }
  return { path: `${root}zig/${out}`, source: `a build from source with ${zig}` };
}

// `bun build --compile` names an embedded file after its source, plus a
// content hash unless --asset-naming says otherwise.
const EMBEDDED_NAME = /^libshm_cache(-[0-9a-z]+)?\.(so|dylib)$/;

/** A library embedded in a compiled Bun executable; Bun's dlopen reads it in place. */
function embeddedLibrary(): Found | undefined {
  // deno-lint-ignore no-explicit-any
  const files: Array<{ name?: string }> | undefined = (globalThis as any).Bun?.embeddedFiles;
  const name = files?.find((file) => EMBEDDED_NAME.test(file.name ?? ""))?.name;
  if (name === undefined) return undefined;
  return { path: `/$bunfs/root/${name}`, source: "the library embedded in this executable" };
}

const HOW_TO_GET =
  "install the package with npm, Bun or Deno so that its platform package comes with it, " +
  "run `bash scripts/setup.sh` in a repository checkout, or set SHM_CACHE_LIB to the library's path";

function locate(): Found {
  const explicit = envPath();
  if (explicit !== undefined) {
    if (!existsSync(explicit)) {
      throw new CacheError(
        "LibraryNotFound",
        `shm-cache: SHM_CACHE_LIB points to ${explicit}, which does not exist`,
      );
    }
    return { path: explicit, source: "SHM_CACHE_LIB" };
  }
  const embedded = embeddedLibrary();
  if (embedded !== undefined) return embedded;
  const tried = ["SHM_CACHE_LIB is not set"];
  const root = repositoryRoot();
  const built = root === undefined ? undefined : `${root}zig/zig-out/lib/${LIB_FILE}`;
  if (built !== undefined && existsSync(built)) {
    return { path: built, source: "the repository's build output" };
  }
  tried.push(built === undefined ? "not in a repository checkout" : `${built} does not exist`);
  const installed = installedPackage(tried);
  if (installed !== undefined) return installed;
  const fromSource = root === undefined ? undefined : buildFromSource(root, tried);
  if (fromSource !== undefined) return fromSource;
  throw new CacheError(
    "LibraryNotFound",
    `shm-cache: no native library for ${describeCurrent()}; tried: ${tried.join("; ")}. ` +
      `To fix: ${HOW_TO_GET}`,
  );
}

function open(found: Found): Native {
  try {
    return bunFfi ? openBun(bunFfi, found.path) : openDeno(found.path);
  } catch (cause) {
    throw new CacheError(
      "LibraryNotFound",
      `shm-cache: ${found.path} (from ${found.source}) could not be loaded: ${String(cause)}`,
      { cause },
    );
  }
}

/** The native library, loaded on first use. */
export function loadNative(): Native {
  if (native !== undefined) return native;
  const found = locate();
  const lib = open(found);
  const abi = lib.shmc_abi_version();
  if (abi !== ABI_VERSION) {
    throw new CacheError(
      "LibraryNotFound",
      `shm-cache: ${found.path} (from ${found.source}) has ABI version ${abi}, ` +
        `this module needs ${ABI_VERSION}; ${HOW_TO_GET}`,
    );
  }
  const differs = constantsMismatch(lib);
  if (differs !== undefined) {
    throw new CacheError(
      "LibraryNotFound",
      `shm-cache: ${found.path} (from ${found.source}) disagrees with this module on ${differs}; ${HOW_TO_GET}`,
    );
  }
  native = lib;
  return lib;
}
