// @ts-self-types="./platform_packages.d.ts"
/**
 * The platform packages as `npm:` specifiers, for Deno where this module is
 * not in `node_modules` (JSR, or `mod.ts` over http): each import is written
 * out in full so that Deno's module graph, and so `deno install`, sees it and
 * caches the package; `load.ts` calls the one for this platform and then
 * resolves the library file beside its manifest, with no fetch at run time.
 * Both are literals, so `deno publish` analyzes them.
 *
 * Why JavaScript, typed by platform_packages.d.ts: a TypeScript file would
 * make `deno check` resolve all six packages, which a checkout does not have.
 *
 * The npm package ships platform_packages_npm.js under this name instead:
 * its optionalDependencies put the platform package in node_modules, where
 * `load.ts` resolves it as a dependency, and `bun build --compile` must not
 * meet `npm:` specifiers it cannot resolve.
 *
 * Each version is the package's own version (`VERSION` in platform.ts);
 * scripts/package.ts refuses to pack when they differ.
 *
 * @module
 */

/**
 * By platform key: `manifest` imports the package's manifest (so that the
 * package is in the module graph and on disk), then `library` resolves its
 * library file to a `file:` URL.
 */
export const platformPackages = {
  "linux-x64-gnu": {
    manifest: () =>
      import("npm:@shm-cache/linux-x64-gnu@0.1.0/package.json", { with: { type: "json" } }),
    library: () => import.meta.resolve("npm:@shm-cache/linux-x64-gnu@0.1.0/libshm_cache.so"),
  },
  "linux-arm64-gnu": {
    manifest: () =>
      import("npm:@shm-cache/linux-arm64-gnu@0.1.0/package.json", { with: { type: "json" } }),
    library: () => import.meta.resolve("npm:@shm-cache/linux-arm64-gnu@0.1.0/libshm_cache.so"),
  },
  "linux-x64-musl": {
    manifest: () =>
      import("npm:@shm-cache/linux-x64-musl@0.1.0/package.json", { with: { type: "json" } }),
    library: () => import.meta.resolve("npm:@shm-cache/linux-x64-musl@0.1.0/libshm_cache.so"),
  },
  "linux-arm64-musl": {
    manifest: () =>
      import("npm:@shm-cache/linux-arm64-musl@0.1.0/package.json", { with: { type: "json" } }),
    library: () => import.meta.resolve("npm:@shm-cache/linux-arm64-musl@0.1.0/libshm_cache.so"),
  },
  "darwin-x64": {
    manifest: () =>
      import("npm:@shm-cache/darwin-x64@0.1.0/package.json", { with: { type: "json" } }),
    library: () => import.meta.resolve("npm:@shm-cache/darwin-x64@0.1.0/libshm_cache.dylib"),
  },
  "darwin-arm64": {
    manifest: () =>
      import("npm:@shm-cache/darwin-arm64@0.1.0/package.json", { with: { type: "json" } }),
    library: () => import.meta.resolve("npm:@shm-cache/darwin-arm64@0.1.0/libshm_cache.dylib"),
  },
};
