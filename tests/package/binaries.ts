/**
 * Checks every library that scripts/package.sh built and staged, from its
 * headers: the ones we cannot run here (macOS, arm64, musl) get every check
 * that does not need running them. Run by scripts/package-test.sh after
 * scripts/package.sh (not by `deno test tests/`: it needs dist/).
 *
 * @module
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { libraryFile, PLATFORMS, VERSION } from "../../lib/ffi/platform.ts";
import { platformPackages } from "../../lib/ffi/platform_packages.js";
import { ABI_VERSION, symbols } from "../../lib/ffi/symbols.ts";
import { readLibrary } from "./_objects.ts";

const STAGE = fileURLToPath(new URL("../../dist/stage/", import.meta.url));
const ARCH = { x64: { elf: "x86_64", macho: "x86_64" }, arm64: { elf: "aarch64", macho: "arm64" } };
const SYMBOLS = Object.keys(symbols).sort();

/** "GLIBC_2.17" as [2, 17]; compares version lists. */
function glibcAtMost(version: string, max: [number, number]): boolean {
  const [major, minor] = version.slice("GLIBC_".length).split(".").map(Number);
  return major < max[0] || (major === max[0] && minor <= max[1]);
}

for (const platform of PLATFORMS) {
  const path = `${STAGE}${platform.key}/${libraryFile(platform.os)}`;
  Deno.test(`${platform.key} (${platform.zigTarget}): ${path}`, () => {
    const facts = readLibrary(readFileSync(path));
    const format = platform.os === "darwin" ? "macho" : "elf";
    assert.equal(facts.format, format);
    assert.equal(facts.arch, ARCH[platform.cpu][format]);
    assert.equal(facts.shared, true, "a shared library");
    assert.deepEqual(
      facts.exports.filter((name) => name.startsWith("shmc_")).sort(),
      SYMBOLS,
      "exports exactly lib/ffi/symbols.ts",
    );
    assert.equal(facts.hasDebugInfo, false, "stripped: no debug information");
    if (format === "elf") {
      assert.equal(facts.hasSymtab, false, "stripped: no .symtab");
      assert.deepEqual(facts.exports.filter((name) => !name.startsWith("shmc_")), []);
    }
    if (platform.libc === "glibc") {
      assert.ok(facts.needed.includes("libc.so.6"), `needs glibc: ${facts.needed}`);
      const glibc = facts.versionsNeeded.filter((v) => v.startsWith("GLIBC_"));
      assert.ok(glibc.length > 0, "versioned glibc symbols");
      assert.deepEqual(glibc.filter((v) => !glibcAtMost(v, [2, 17])), [], "glibc <= 2.17 only");
    } else if (platform.libc === "musl") {
      assert.deepEqual(facts.needed, ["libc.so"], "needs musl's libc.so only");
      assert.deepEqual(facts.versionsNeeded, [], "no glibc symbol versions");
    } else {
      assert.equal(facts.buildPlatform, 1, "LC_BUILD_VERSION platform macOS");
      assert.equal(facts.minOs, "13.0", "minimum macOS 13.0");
      assert.ok(facts.needed.includes("/usr/lib/libSystem.B.dylib"), `${facts.needed}`);
    }
  });
}

// platform_packages.js is written out by hand (its specifiers must be
// literals): it names exactly the platforms of platform.ts, each library file.
Deno.test("platform_packages.js names every platform, at this version, with its library", () => {
  assert.deepEqual(Object.keys(platformPackages).sort(), PLATFORMS.map((p) => p.key).sort());
  const source = readFileSync(
    new URL("../../lib/ffi/platform_packages.js", import.meta.url),
    "utf8",
  );
  for (const p of PLATFORMS) {
    const base = `"npm:@shm-cache/${p.key}@${VERSION}/`;
    assert.ok(source.includes(`${base}package.json"`), `${p.key} manifest`);
    assert.ok(source.includes(`${base}${libraryFile(p.os)}"`), `${p.key} library`);
  }
});

// The one we can run: this machine's, opened as the loader opens it.
const here = PLATFORMS.find((p) =>
  p.os === Deno.build.os && p.cpu === (Deno.build.arch === "x86_64" ? "x64" : "arm64") &&
  p.libc === "glibc"
);
Deno.test({
  name: `${here?.key}: loads here and reports ABI version ${ABI_VERSION}`,
  ignore: here === undefined,
  fn() {
    const lib = Deno.dlopen(`${STAGE}${here!.key}/${libraryFile(here!.os)}`, {
      shmc_abi_version: symbols.shmc_abi_version,
    });
    try {
      assert.equal(lib.symbols.shmc_abi_version(), ABI_VERSION);
    } finally {
      lib.close();
    }
  },
});
