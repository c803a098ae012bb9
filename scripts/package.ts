/**
 * Builds every npm package into dist/ (run by scripts/package.sh, which
 * installs the toolchain first):
 *
 * - one platform package per entry of lib/ffi/platform.ts
 *   (`@shm-cache/linux-x64-gnu`, ...), holding its stripped library, the
 *   LICENSE and a manifest with `os`, `cpu` and, on Linux, `libc`;
 * - the root package `shm-cache`: ESM JavaScript and `.d.ts` compiled by
 *   TypeScript's `tsc` from the same sources JSR publishes, the README and
 *   LICENSE, `exports` generated from deno.json's `exports` map (the one
 *   list of entry points), the `shm-cache` CLI as its `bin`, and
 *   exact-version `optionalDependencies` on every platform package.
 *
 * Tarballs are written by `npm pack`; their names are printed, one a line.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { libraryFile, packageName, PLATFORMS, VERSION } from "../lib/ffi/platform.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const DIST = join(ROOT, "dist");
const STAGE = join(DIST, "stage");

interface Manifest {
  name: string;
  version: string;
  description: string;
  // deno-lint-ignore no-explicit-any
  [field: string]: any;
}

function readJson(path: string): Manifest {
  return JSON.parse(readFileSync(join(ROOT, path), "utf8"));
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** The package's executables: name to source. The CLI runs under Bun (its shebang) or Deno. */
const BIN: Record<string, string> = { "shm-cache": "lib/cli.ts" };

const repoManifest = readJson("package.json");
const denoManifest = readJson("deno.json");

/** Every place that names the version agrees, or nothing is packed. */
function checkVersions(): void {
  const found: Record<string, string[]> = {
    "package.json": [repoManifest.version],
    "deno.json": [denoManifest.version],
    "lib/ffi/platform.ts VERSION": [VERSION],
    "lib/ffi/platform_packages.js": [
      ...readFileSync(join(ROOT, "lib/ffi/platform_packages.js"), "utf8")
        .matchAll(/"npm:@shm-cache\/[a-z0-9-]+@([^/"]+)\//g),
    ].map((m) => m[1]),
  };
  const wrong = Object.entries(found).filter(([, versions]) =>
    versions.length === 0 || versions.some((v) => v !== VERSION)
  );
  if (wrong.length > 0) {
    throw new Error(
      `versions differ: ${
        Object.entries(found).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ")
      }`,
    );
  }
}

function run(command: string, args: string[], cwd = ROOT): string {
  return execFileSync(command, args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
}

/** `npm pack`s a staged directory into dist/; returns the tarball's path. */
function pack(dir: string): string {
  const out = run("npm", ["pack", "--silent", "--pack-destination", DIST], dir).trim();
  return join(DIST, out.split("\n").at(-1)!);
}

const COMMON = {
  version: VERSION,
  license: "MIT",
  repository: repoManifest.repository,
  homepage: repoManifest.homepage,
};

function packPlatforms(): string[] {
  const tarballs: string[] = [];
  for (const platform of PLATFORMS) {
    const file = libraryFile(platform.os);
    const built = join(DIST, "native", platform.key, file);
    run("bash", ["scripts/native.sh", "release", platform.zigTarget, built]);
    const dir = join(STAGE, platform.key);
    mkdirSync(dir, { recursive: true });
    copyFileSync(built, join(dir, file));
    copyFileSync(join(ROOT, "LICENSE"), join(dir, "LICENSE"));
    const libc = platform.libc === undefined ? {} : { libc: [platform.libc] };
    writeJson(join(dir, "package.json"), {
      name: packageName(platform),
      ...COMMON,
      description: `The shm-cache native library for ${platform.key} (${platform.zigTarget}).`,
      os: [platform.os],
      cpu: [platform.cpu],
      ...libc,
      files: [file],
      preferUnplugged: true,
    });
    tarballs.push(pack(dir));
  }
  return tarballs;
}

/** deno.json's `exports` map: "." and "./name" to a .ts source. */
function entryPoints(): Record<string, string> {
  const exports = denoManifest.exports;
  return typeof exports === "string" ? { ".": exports } : exports;
}

function compile(dir: string, entries: string[]): void {
  const tsconfig = join(STAGE, "tsconfig.json");
  writeJson(tsconfig, {
    compilerOptions: {
      target: "es2022",
      module: "esnext",
      moduleResolution: "bundler",
      // `./x.ts` in the sources becomes `./x.js` in the output.
      rewriteRelativeImportExtensions: true,
      declaration: true,
      // `deno check` and `bun test` type-check these sources in the test
      // command; tsc only emits (it has no `Deno` namespace types).
      noCheck: true,
      skipLibCheck: true,
      types: ["node"],
      typeRoots: [join(ROOT, "node_modules/@types")],
      rootDir: ROOT,
      outDir: dir,
    },
    files: entries.map((e) => join(ROOT, e)),
  });
  run(join(ROOT, "node_modules/.bin/tsc"), ["-p", tsconfig]);
  // The .js module tsc does not compile: the npm variant under the JSR name
  // (see platform_packages.js), and its types.
  copyFileSync(
    join(ROOT, "lib/ffi/platform_packages_npm.js"),
    join(dir, "lib/ffi/platform_packages.js"),
  );
  copyFileSync(
    join(ROOT, "lib/ffi/platform_packages.d.ts"),
    join(dir, "lib/ffi/platform_packages.d.ts"),
  );
}

function packRoot(): string {
  const dir = join(STAGE, "shm-cache");
  mkdirSync(dir, { recursive: true });
  const entries = entryPoints();
  const sources = Object.values(entries).map((p) => p.replace(/^\.\//, ""));
  compile(dir, [...sources, ...Object.values(BIN)]);
  const exports: Record<string, unknown> = {};
  for (const [key, source] of Object.entries(entries)) {
    const base = source.replace(/\.ts$/, "");
    exports[key] = { types: `${base}.d.ts`, default: `${base}.js` };
  }
  exports["./package.json"] = "./package.json";
  for (const file of ["README.md", "LICENSE"]) copyFileSync(join(ROOT, file), join(dir, file));
  writeJson(join(dir, "package.json"), {
    name: "shm-cache",
    ...COMMON,
    description: repoManifest.description,
    keywords: repoManifest.keywords,
    type: "module",
    exports,
    bin: Object.fromEntries(
      Object.entries(BIN).map(([name, source]) => [name, `./${source.replace(/\.ts$/, ".js")}`]),
    ),
    types: exports["."] === undefined ? undefined : `${entries["."].replace(/\.ts$/, "")}.d.ts`,
    files: ["**/*.js", "**/*.d.ts", "README.md", "LICENSE"],
    // The library's own runtime dependencies, as the repository pins them.
    dependencies: repoManifest.dependencies,
    optionalDependencies: Object.fromEntries(PLATFORMS.map((p) => [packageName(p), VERSION])),
  });
  return pack(dir);
}

checkVersions();
rmSync(STAGE, { recursive: true, force: true });
mkdirSync(STAGE, { recursive: true });
for (const old of readdirSync(DIST)) {
  if (old.endsWith(".tgz")) rmSync(join(DIST, old));
}
const tarballs = [...packPlatforms(), packRoot()];
for (const tarball of tarballs) console.log(tarball);
