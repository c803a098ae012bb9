/**
 * A Keyv storage adapter over a `SharedCache` (or a `MemoryCache`): Keyv's
 * users, and cache-manager's (whose stores are Keyv instances), get an L1
 * cache shared by every process on the host by changing one line.
 *
 * ```ts ignore
 * import { Keyv } from "keyv";
 * import { SharedCache } from "shm-cache";
 * import { KeyvShmCache } from "shm-cache/keyv";
 *
 * const l1 = SharedCache.open("l1", { capacity: 100_000, maxKeyBytes: 256, maxValueBytes: 65_536 });
 * const keyv = new Keyv({ store: new KeyvShmCache(l1), namespace: "users" });
 * await keyv.set("ada", { name: "Ada" }, 60_000);
 * ```
 *
 * This module imports nothing at run time: Keyv and cache-manager are the
 * caller's, and any version whose storage contract is the relative-`ttl`
 * one (Keyv 5 directly, Keyv 6 through its `KeyvBridgeAdapter`, which it
 * applies by itself) works with it. Keyv 5 prefixes each key with its
 * namespace itself and Keyv 6 leaves that to the adapter, so the two lay
 * keys out differently: the processes sharing one cache through Keyv use
 * one major version of it.
 *
 * @module
 */

// Keyv wants every storage method to return a promise, and Keyv 6 tells a full
// adapter by methods declared `async`: most of them have nothing to await.
// deno-lint-ignore-file require-await
import type { SharedCache } from "./cache.ts";
import type { MemoryCache } from "./memory_cache.ts";

/**
 * The cache operations the adapter uses: `SharedCache` and `MemoryCache` have them.
 *
 * @example
 * ```ts
 * import { MemoryCache } from "./memory_cache.ts";
 * import type { KeyvShmCacheBackend } from "./keyv.ts";
 *
 * const backend: KeyvShmCacheBackend = new MemoryCache();
 * ```
 */
export type KeyvShmCacheBackend =
  | Pick<SharedCache, "get" | "set" | "has" | "delete" | "clear" | "keys" | "close">
  | Pick<MemoryCache, "get" | "set" | "has" | "delete" | "clear" | "keys" | "close">;

/**
 * Options of {@linkcode KeyvShmCache}.
 *
 * @example
 * ```ts
 * import type { KeyvShmCacheOptions } from "./keyv.ts";
 *
 * const options: KeyvShmCacheOptions = { namespace: "sessions", closeOnDisconnect: true };
 * ```
 */
export interface KeyvShmCacheOptions {
  /**
   * The namespace whose keys this adapter reads and writes (Keyv sets it to
   * its own `namespace` option, "keyv" by default). Each key is stored as
   * `<namespace>::<key>`, so namespaces share one cache without meeting;
   * `clear()` removes the namespace's keys only.
   */
  namespace?: string;
  /** Whether `disconnect()` closes the cache too. Default: false (the cache is yours). */
  closeOnDisconnect?: boolean;
}

type Listener = (...args: unknown[]) => void;

/** The separator between a namespace and a key in the cache. */
const SEPARATOR = "::";

/**
 * A Keyv storage adapter (the relative-`ttl` contract) over a `SharedCache`
 * or `MemoryCache`. Values are what Keyv hands it (by default the
 * serialized text of `{ value, expires }`); a value the cache cannot store
 * (over `maxValueBytes`) rejects the operation, which Keyv reports as an
 * `error` event. The cache's own expiry enforces each entry's `ttl`.
 *
 * @example
 * ```ts
 * import { MemoryCache } from "./memory_cache.ts";
 * import { KeyvShmCache } from "./keyv.ts";
 *
 * const store = new KeyvShmCache(new MemoryCache(), { namespace: "app" });
 * await store.set("a", "1", 1000);
 * await store.get("a"); // "1"
 * ```
 */
export class KeyvShmCache {
  /** The cache the entries live in. */
  readonly cache: KeyvShmCacheBackend;
  /**
   * What Keyv reads of an adapter's options: Keyv 6 iterates any adapter
   * with an `iterator()`; Keyv 5 only those of the dialects it lists, so
   * `keyv.iterator` is there under Keyv 6 only.
   */
  readonly opts: { readonly dialect: string; readonly url: string } = {
    dialect: "shm-cache",
    url: "",
  };
  #namespace: string | undefined;
  #prefix = "";
  #closeOnDisconnect: boolean;
  #listeners = new Map<string, Listener[]>();
  // The methods are declared `async` (errors become rejections, as Keyv
  // expects): Keyv 6 tells a full storage adapter by its async methods.

  /**
   * Wraps `cache`.
   *
   * @param cache A `SharedCache` or `MemoryCache` (any object with their `get`/`set`/`has`/`delete`/`clear`/`keys`/`close`).
   * @param options The namespace, and whether `disconnect()` closes the cache.
   * @throws {TypeError} If `cache` lacks those methods or an option is unknown or of the wrong type.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache(), { closeOnDisconnect: true });
   * await store.disconnect(); // closes the MemoryCache
   * ```
   */
  constructor(cache: KeyvShmCacheBackend, options: KeyvShmCacheOptions = {}) {
    for (const method of ["get", "set", "has", "delete", "clear", "keys", "close"] as const) {
      if (typeof (cache as unknown as Record<string, unknown>)?.[method] !== "function") {
        throw new TypeError(
          `KeyvShmCache: cache must be a SharedCache or MemoryCache, got one without ${method}()`,
        );
      }
    }
    if (typeof options !== "object" || options === null) {
      throw new TypeError("KeyvShmCache options must be an object");
    }
    for (const name of Object.keys(options)) {
      if (name !== "namespace" && name !== "closeOnDisconnect") {
        throw new TypeError(
          `KeyvShmCache options: unknown option ${
            JSON.stringify(name)
          } (known options: namespace, closeOnDisconnect)`,
        );
      }
    }
    if (options.namespace !== undefined && typeof options.namespace !== "string") {
      throw new TypeError("KeyvShmCache options: namespace must be a string");
    }
    this.cache = cache;
    this.namespace = options.namespace;
    this.#closeOnDisconnect = options.closeOnDisconnect === true;
  }

  /**
   * The namespace; Keyv assigns it. Keys are stored as `<namespace>::<key>`.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache());
   * store.namespace = "sessions";
   * ```
   */
  get namespace(): string | undefined {
    return this.#namespace;
  }

  set namespace(namespace: string | undefined) {
    this.#namespace = namespace === "" ? undefined : namespace;
    this.#prefix = this.#namespace === undefined ? "" : this.#namespace + SEPARATOR;
  }

  /**
   * The value under `key` in the namespace, or `undefined`.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache());
   * await store.get("missing"); // undefined
   * ```
   */
  async get<Value>(key: string): Promise<Value | undefined> {
    return this.cache.get(this.#prefix + key) as Value | undefined;
  }

  /**
   * The values under `keys`, in order.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache());
   * await store.set("a", "1");
   * await store.getMany(["a", "b"]); // ["1", undefined]
   * ```
   */
  async getMany<Value>(keys: string[]): Promise<(Value | undefined)[]> {
    return keys.map((key) => this.cache.get(this.#prefix + key) as Value | undefined);
  }

  /**
   * Stores `value` under `key`; `ttl` in milliseconds (absent or 0: the cache's own time to live).
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache());
   * await store.set("a", "1", 60_000); // true
   * ```
   */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    this.cache.set(this.#prefix + key, value, ttlOptions(ttl));
    return true;
  }

  /**
   * Stores each `{ key, value, ttl }`.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache());
   * await store.setMany([{ key: "a", value: "1" }, { key: "b", value: "2", ttl: 1000 }]);
   * ```
   */
  async setMany(entries: { key: string; value: unknown; ttl?: number }[]): Promise<boolean[]> {
    return entries.map(({ key, value, ttl }) => {
      this.cache.set(this.#prefix + key, value, ttlOptions(ttl));
      return true;
    });
  }

  /**
   * Whether `key` has a live entry in the namespace.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache());
   * await store.has("a"); // false
   * ```
   */
  async has(key: string): Promise<boolean> {
    return this.cache.has(this.#prefix + key);
  }

  /**
   * Whether each of `keys` has a live entry.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache());
   * await store.hasMany(["a"]); // [false]
   * ```
   */
  async hasMany(keys: string[]): Promise<boolean[]> {
    return keys.map((key) => this.cache.has(this.#prefix + key));
  }

  /**
   * Removes `key`; true if it was there.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache());
   * await store.delete("a"); // false
   * ```
   */
  async delete(key: string): Promise<boolean> {
    return this.cache.delete(this.#prefix + key);
  }

  /**
   * Removes `keys`; true if every one was there (Keyv 5's contract).
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache());
   * await store.deleteMany(["a", "b"]); // false
   * ```
   */
  async deleteMany(keys: string[]): Promise<boolean> {
    let all = true;
    for (const key of keys) all = this.cache.delete(this.#prefix + key) && all;
    return all;
  }

  /**
   * Removes the namespace's entries (every entry when there is no
   * namespace), walking the cache's keys; other namespaces and keys stored
   * by other code are kept.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache(), { namespace: "a" });
   * await store.clear();
   * ```
   */
  async clear(): Promise<void> {
    if (this.#prefix === "") return this.cache.clear();
    const doomed: string[] = [];
    for (const key of this.cache.keys()) {
      if (typeof key === "string" && key.startsWith(this.#prefix)) doomed.push(key);
    }
    for (const key of doomed) this.cache.delete(key);
  }

  /**
   * The namespace's `[key, value]` pairs (keys without the namespace), as
   * `SharedCache.entries` reads them.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * const store = new KeyvShmCache(new MemoryCache(), { namespace: "n" });
   * await store.set("a", "1");
   * for await (const [key, value] of store.iterator()) console.log(key, value); // a 1
   * ```
   */
  async *iterator<Value>(namespace?: string): AsyncGenerator<[string, Value], void> {
    const prefix = namespace === undefined ? this.#prefix : namespace + SEPARATOR;
    for (const key of this.cache.keys()) {
      if (typeof key !== "string" || !key.startsWith(prefix)) continue;
      // Read now: the entry may have gone since the key was listed.
      const value = this.cache.get(key);
      if (value !== undefined || this.cache.has(key)) {
        yield [key.slice(prefix.length), value as Value];
      }
    }
  }

  /**
   * Closes the cache if `closeOnDisconnect` was given; otherwise nothing.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * await new KeyvShmCache(new MemoryCache()).disconnect();
   * ```
   */
  async disconnect(): Promise<void> {
    if (this.#closeOnDisconnect) this.cache.close();
  }

  /**
   * Registers `listener` for `event` (Keyv listens for "error").
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * new KeyvShmCache(new MemoryCache()).on("error", (e) => console.error(e));
   * ```
   */
  on(event: string, listener: (...args: unknown[]) => void): this {
    const list = this.#listeners.get(event);
    if (list === undefined) this.#listeners.set(event, [listener]);
    else list.push(listener);
    return this;
  }

  /**
   * Calls the listeners of `event`; true if there were any.
   *
   * @example
   * ```ts
   * import { MemoryCache } from "./memory_cache.ts";
   * import { KeyvShmCache } from "./keyv.ts";
   *
   * new KeyvShmCache(new MemoryCache()).emit("ping"); // false
   * ```
   */
  emit(event: string, ...args: unknown[]): boolean {
    const list = this.#listeners.get(event);
    if (list === undefined || list.length === 0) return false;
    for (const listener of [...list]) listener(...args);
    return true;
  }
}

function ttlOptions(ttl: number | undefined): { ttlMs: number } | undefined {
  return typeof ttl === "number" && ttl > 0 ? { ttlMs: ttl } : undefined;
}
