/**
 * shm-cache: one cache in shared memory for every Deno and Bun process on a
 * host. Reads take no lock (a seqlock validates them); writes take a
 * cross-process writer lock that survives its owner's death.
 *
 * ```ts
 * import { SharedCache } from "./mod.ts";
 * using cache = SharedCache.open("sessions", { capacity: 10_000, maxKeyBytes: 256, maxValueBytes: 4096 });
 * cache.set("user:1", { name: "Ada" });
 * cache.get("user:1"); // { name: "Ada" }
 * ```
 *
 * For a fleet of hosts, {@linkcode TieredCache} puts a Redis L2 behind each
 * host's shared L1 and keeps the hosts' L1s coherent.
 *
 * @module
 */

export {
  type CacheStats,
  type SetOptions,
  SharedCache,
  type SharedCacheOptions,
  type VerifyResult,
} from "./lib/cache.ts";
export { CacheLock } from "./lib/guard.ts";
export { cacheDirectory, type CacheInfo, inspectCache, listCaches } from "./lib/inspect.ts";
export { CacheError, type CacheErrorCode } from "./lib/errors.ts";
export type { CacheValue, CodecName } from "./lib/codec.ts";
export {
  type AnyFunction,
  memoize,
  type MemoizeCache,
  type MemoizeControls,
  type Memoized,
  memoized,
  memoizeKey,
  type MemoizeOptions,
  type MemoizeOptionsOf,
  type MemoizeSharedOptions,
  type MemoizeStats,
} from "./lib/memoize.ts";
export { type GetOrSetOptions, RecursiveCallError } from "./lib/_single_flight.ts";
export {
  MemoryCache,
  type MemoryCacheKey,
  type MemoryCacheOptions,
  type MemoryCacheSetOptions,
  type MemoryCacheStats,
} from "./lib/memory_cache.ts";
export {
  TieredCache,
  type TieredCacheOptions,
  type TieredCacheStats,
  type TieredSerializer,
  type TieredSetOptions,
} from "./lib/tiered.ts";
export {
  type BunRedisClientLike,
  bunRedisTransport,
  type L2Connection,
  type NodeRedisClientLike,
  nodeRedisTransport,
  type TieredTransport,
  type TransportSubscription,
} from "./lib/tiered_transport.ts";
