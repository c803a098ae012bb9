/**
 * The two backends the API tests run every case against: a MemoryCache and
 * a SharedCache in a private directory of its own.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { MemoryCache, SharedCache } from "../mod.ts";

/** The geometry of every scratch cache, and of tests/fixtures/api_child.ts. */
const OPTIONS = { capacity: 256, maxKeyBytes: 64, maxValueBytes: 256 } as const;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let serial = 0;

/** A fresh shared cache in a private directory; `dispose` closes and removes it. */
export function scratch(): { cache: SharedCache; name: string; dir: string; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), "shm-api-"));
  const name = `api-${process.pid}-${++serial}`;
  const cache = SharedCache.open(name, { ...OPTIONS, dir });
  return {
    cache,
    name,
    dir,
    dispose() {
      cache.close();
      SharedCache.destroy(name, { dir });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type AnyCache = SharedCache | MemoryCache;

/** Each backend by name, with a maker of a fresh cache and its disposal. */
export const BACKENDS: { backend: string; make(): { cache: AnyCache; dispose(): void } }[] = [
  {
    backend: "memory",
    make: () => {
      const cache = new MemoryCache();
      return { cache, dispose: () => cache.close() };
    },
  },
  { backend: "shared", make: scratch },
];
