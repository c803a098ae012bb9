/**
 * The writer-lock guard returned by `SharedCache#lock()`.
 *
 * @module
 */

import { checkOptionNames } from "./_options.ts";
import { CacheError } from "./errors.ts";

/** What a guard needs from its cache (implemented in cache.ts). */
export interface LockedOps {
  get(key: string | Uint8Array): unknown;
  has(key: string | Uint8Array): boolean;
  set(key: string | Uint8Array, value: unknown, ttlMs: number | undefined): void;
  delete(key: string | Uint8Array): boolean;
  clear(): void;
  unlock(): void;
  readonly name: string;
}

const SET_OPTIONS = ["ttlMs"];

/**
 * Holds a cache's cross-process writer lock until disposed. Use it with
 * `using`, so the lock is released when the block ends, also by a throw.
 * Operations through the guard run under the one acquisition; they must
 * not be interleaved with `await`, since the lock blocks every other
 * writer while held (`lockTimeoutMs` bounds their wait, then they drop the
 * write).
 *
 * @example
 * ```ts
 * import { SharedCache } from "../mod.ts";
 * const cache = SharedCache.open("counters", { capacity: 100, maxKeyBytes: 32, maxValueBytes: 16 });
 * {
 *   using tx = cache.lock();
 *   tx.set("hits", ((tx.get("hits") as number | undefined) ?? 0) + 1);
 * } // released here
 * cache.close();
 * ```
 */
export class CacheLock implements Disposable {
  #ops: LockedOps | undefined;

  /** @internal Created by `SharedCache#lock()`. */
  constructor(ops: LockedOps) {
    this.#ops = ops;
  }

  #live(): LockedOps {
    const ops = this.#ops;
    if (ops === undefined) {
      throw new CacheError("NotLocked", "this lock guard was already released");
    }
    return ops;
  }

  /** True until {@linkcode release} (or disposal). */
  get held(): boolean {
    return this.#ops !== undefined;
  }

  /** Like `SharedCache#get`, under the held lock. */
  get(key: string | Uint8Array): unknown {
    return this.#live().get(key);
  }

  /** Like `SharedCache#has`, under the held lock. */
  has(key: string | Uint8Array): boolean {
    return this.#live().has(key);
  }

  /** Like `SharedCache#set`, under the held lock. */
  set(key: string | Uint8Array, value: unknown, options?: { ttlMs?: number }): void {
    checkOptionNames(options, SET_OPTIONS, "CacheLock.set options (the third argument)");
    this.#live().set(key, value, options?.ttlMs);
  }

  /** Like `SharedCache#delete`, under the held lock. */
  delete(key: string | Uint8Array): boolean {
    return this.#live().delete(key);
  }

  /** Like `SharedCache#clear`, under the held lock. */
  clear(): void {
    this.#live().clear();
  }

  /** Releases the lock. Idempotent. */
  release(): void {
    const ops = this.#ops;
    if (ops === undefined) return;
    this.#ops = undefined;
    ops.unlock();
  }

  /** Releases the lock (for `using`). */
  [Symbol.dispose](): void {
    this.release();
  }
}
