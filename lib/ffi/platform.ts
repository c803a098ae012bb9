/**
 * The platforms we ship a prebuilt library for, one npm package each
 * (`@shm-cache/linux-x64-gnu`, ...), and which of them this process needs.
 * `scripts/package.ts` builds and packs from this table; `load.ts` looks the
 * library up in it.
 *
 * `platform_packages.js` names the same packages as `npm:` specifiers for
 * Deno where no `node_modules` is around this module (JSR, `mod.ts` over
 * http); it says why it is JavaScript.
 *
 * @module
 */

import { existsSync, readFileSync } from "node:fs";
import process from "node:process";

/** The version of this package; the platform packages carry the same one. */
export const VERSION = "0.1.0";

/** One prebuilt library and the npm package that carries it. */
export interface Platform {
  /** The package name's suffix, `${os}-${cpu}` plus `-gnu` or `-musl` on Linux. */
  readonly key: string;
  /** `process.platform` (and npm's `os` field). */
  readonly os: "linux" | "darwin";
  /** `process.arch` (and npm's `cpu` field). */
  readonly cpu: "x64" | "arm64";
  /** npm's `libc` field, on Linux. */
  readonly libc?: "glibc" | "musl";
  /** The Zig target triple it is built for. */
  readonly zigTarget: string;
}

/** Every platform, in the order of the README's table. */
export const PLATFORMS: readonly Platform[] = [
  {
    key: "linux-x64-gnu",
    os: "linux",
    cpu: "x64",
    libc: "glibc",
    zigTarget: "x86_64-linux-gnu.2.17",
  },
  {
    key: "linux-arm64-gnu",
    os: "linux",
    cpu: "arm64",
    libc: "glibc",
    zigTarget: "aarch64-linux-gnu.2.17",
  },
  {
    key: "linux-x64-musl",
    os: "linux",
    cpu: "x64",
    libc: "musl",
    zigTarget: "x86_64-linux-musl",
  },
  {
    key: "linux-arm64-musl",
    os: "linux",
    cpu: "arm64",
    libc: "musl",
    zigTarget: "aarch64-linux-musl",
  },
  {
    key: "darwin-x64",
    os: "darwin",
    cpu: "x64",
    zigTarget: "x86_64-macos.13.0",
  },
  {
    key: "darwin-arm64",
    os: "darwin",
    cpu: "arm64",
    zigTarget: "aarch64-macos.13.0",
  },
];

/** The library's file name on an OS. */
export function libraryFile(os: string): string {
  return os === "darwin" ? "libshm_cache.dylib" : "libshm_cache.so";
}

/** The npm package name of a platform. */
export function packageName(platform: Platform): string {
  return `@shm-cache/${platform.key}`;
}

/**
 * The C library this process runs on, read from its own memory map: a glibc
 * build of Deno on Alpine (through gcompat) needs the glibc library even
 * where musl is the system's libc. Where /proc cannot be read, the presence
 * of musl's dynamic loader decides.
 */
function linuxLibc(): "glibc" | "musl" {
  try {
    const maps = readFileSync("/proc/self/maps", "utf8");
    if (maps.includes("/ld-musl-") || maps.includes("/libc.musl-")) return "musl";
    if (maps.includes("/libc.so.6") || maps.includes("/ld-linux")) return "glibc";
  } catch {
    // no /proc, or no read permission for it: fall through
  }
  const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  return existsSync(`/lib/ld-musl-${arch}.so.1`) ? "musl" : "glibc";
}

/** The platform of this process, or undefined where we ship no library. */
export function currentPlatform(): Platform | undefined {
  const os = process.platform;
  const cpu = process.arch;
  const libc = os === "linux" ? linuxLibc() : undefined;
  return PLATFORMS.find((p) => p.os === os && p.cpu === cpu && p.libc === libc);
}

/** A description of this process's platform for error messages. */
export function describeCurrent(): string {
  const libc = process.platform === "linux" ? ` (${linuxLibc()})` : "";
  return `${process.platform}-${process.arch}${libc}`;
}
