/**
 * Types of platform_packages.js (and of platform_packages_npm.js).
 *
 * @module
 */

/** One platform package, reached through `npm:` specifiers. */
export interface PlatformPackage {
  /** Imports the package's manifest: brings the package into the module graph. */
  manifest(): Promise<unknown>;
  /** The library file's URL, once `manifest()` has resolved. */
  library(): string;
}

/** By platform key (`linux-x64-gnu`, ...). */
export declare const platformPackages: Readonly<Record<string, PlatformPackage | undefined>>;
