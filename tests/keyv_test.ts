/**
 * The Keyv adapter (lib/keyv.ts, `shm-cache/keyv`) under the real `keyv`
 * from npm, 5 (the one cache-manager 7 depends on) and 6 (which bridges the
 * adapter's relative-ttl contract), and `cache-manager` 7 (whose stores are
 * Keyv 5 instances), over SharedCache and
 * MemoryCache: values, TTLs, namespaces kept apart, clear() of one
 * namespace, iteration; and values written through one process's Keyv read
 * through another handle's (the shared L1).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Keyv as Keyv5 } from "keyv";
import { Keyv as Keyv6 } from "keyv6";
import { createCache } from "cache-manager";
import { test } from "./_harness.ts";
import { MemoryCache, SharedCache } from "../mod.ts";
import { KeyvShmCache } from "../lib/keyv.ts";

const OPTIONS = { capacity: 256, maxKeyBytes: 128, maxValueBytes: 1024 } as const;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
let serial = 0;

function scratch(): { cache: SharedCache; open(): SharedCache; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), "shm-keyv-"));
  const name = `keyv-${process.pid}-${++serial}`;
  const opened: SharedCache[] = [];
  const open = () => {
    const cache = SharedCache.open(name, { ...OPTIONS, dir });
    opened.push(cache);
    return cache;
  };
  return {
    cache: open(),
    open,
    dispose() {
      for (const cache of opened) cache.close();
      SharedCache.destroy(name, { dir });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const BACKENDS = [
  {
    backend: "memory",
    make: () => {
      const cache = new MemoryCache();
      return { cache, dispose: () => cache.close() };
    },
  },
  { backend: "shared", make: scratch },
];

/** The surface of Keyv these tests use, the same in 5 and 6. */
interface AnyKeyv {
  on(event: "error", listener: (e: unknown) => void): unknown;
  get(key: string): Promise<unknown>;
  getMany(keys: string[]): Promise<unknown[]>;
  set(key: string, value: unknown, ttl?: number): Promise<boolean>;
  setMany(entries: { key: string; value: unknown }[]): Promise<unknown>;
  has(key: string): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  clear(): Promise<void>;
  iterator?: (() => AsyncGenerator<unknown[]>) | undefined;
}
const VERSIONS: { version: string; make(options: object): AnyKeyv }[] = [
  { version: "keyv 5", make: (options) => new Keyv5(options) as unknown as AnyKeyv },
  { version: "keyv 6", make: (options) => new Keyv6(options) as unknown as AnyKeyv },
];

for (const { backend, make } of BACKENDS) {
  for (const { version, make: newKeyv } of VERSIONS) {
    keyvTests(backend, make, version, newKeyv);
  }

  test(`cache-manager (${backend}): a Keyv store over shm-cache, with wrap and ttl`, async () => {
    const { cache, dispose } = make();
    try {
      const manager = createCache({ stores: [new Keyv5({ store: new KeyvShmCache(cache) })] });
      assert.deepEqual(await manager.set("k", { v: 1 }, 60_000), { v: 1 });
      assert.deepEqual(await manager.get("k"), { v: 1 });
      let calls = 0;
      const load = () => Promise.resolve({ n: ++calls });
      assert.deepEqual(await manager.wrap("w", load, 60_000), { n: 1 });
      assert.deepEqual(await manager.wrap("w", load, 60_000), { n: 1 });
      assert.equal(calls, 1);
      await manager.set("t", "x", 30);
      await sleep(60);
      assert.equal(await manager.get("t"), undefined);
      assert.equal(await manager.del("k"), true);
      assert.equal(await manager.get("k"), undefined);
    } finally {
      dispose();
    }
  });
}

function keyvTests(
  backend: string,
  make: () => { cache: SharedCache | MemoryCache; dispose(): void },
  version: string,
  newKeyv: (options: object) => AnyKeyv,
): void {
  test(`${version} (${backend}): get, set with ttl, delete, has, many`, async () => {
    const { cache, dispose } = make();
    try {
      const keyv = newKeyv({ store: new KeyvShmCache(cache) });
      const errors: unknown[] = [];
      keyv.on("error", (e: unknown) => errors.push(e));
      assert.equal(await keyv.set("user", { name: "Ada", tags: ["x"] }), true);
      assert.deepEqual(await keyv.get("user"), { name: "Ada", tags: ["x"] });
      assert.equal(await keyv.has("user"), true);
      await keyv.set("short", "v", 30);
      assert.equal(await keyv.get("short"), "v");
      await sleep(60);
      assert.equal(await keyv.get("short"), undefined);
      await keyv.setMany([{ key: "a", value: 1 }, { key: "b", value: 2 }]);
      assert.deepEqual(await keyv.getMany(["a", "b", "c"]), [1, 2, undefined]);
      assert.equal(await keyv.delete("a"), true);
      assert.equal(await keyv.get("a"), undefined);
      assert.deepEqual(errors, []);
    } finally {
      dispose();
    }
  });

  test(`${version} (${backend}): namespaces are kept apart, and clear() clears one`, async () => {
    const { cache, dispose } = make();
    try {
      const users = newKeyv({ store: new KeyvShmCache(cache), namespace: "users" });
      const posts = newKeyv({ store: new KeyvShmCache(cache), namespace: "posts" });
      cache.set("unrelated", 1);
      await users.set("1", "ada");
      await posts.set("1", "hello");
      assert.equal(await users.get("1"), "ada");
      assert.equal(await posts.get("1"), "hello");
      await users.clear();
      assert.equal(await users.get("1"), undefined);
      assert.equal(await posts.get("1"), "hello");
      assert.equal(cache.get("unrelated"), 1);
      // Keyv 5 iterates only the stores of the dialects it lists.
      if (version === "keyv 6") {
        const listed: [string, unknown][] = [];
        for await (const [key, value] of posts.iterator!()) listed.push([key as string, value]);
        assert.deepEqual(listed, [["1", "hello"]]);
      }
    } finally {
      dispose();
    }
  });
}

test("keyv (shared): what one handle's Keyv writes another handle's Keyv reads", async () => {
  const space = scratch();
  try {
    // Keyv 5 prefixes keys itself, Keyv 6 leaves it to the adapter, so the
    // processes of one cache use one major version of Keyv.
    for (const { make: newKeyv } of VERSIONS) {
      const a = newKeyv({ store: new KeyvShmCache(space.cache), namespace: "l1" });
      const b = newKeyv({ store: new KeyvShmCache(space.open()), namespace: "l1" });
      await a.set("session", { user: 1 }, 60_000);
      assert.deepEqual(await b.get("session"), { user: 1 });
      await b.delete("session");
      assert.equal(await a.get("session"), undefined);
    }
  } finally {
    space.dispose();
  }
});

test("keyv: a value over maxValueBytes is an error event, not a crash; the adapter checks its cache", async () => {
  const space = scratch();
  try {
    const keyv = new Keyv5({ store: new KeyvShmCache(space.cache) });
    const errors: unknown[] = [];
    keyv.on("error", (e: unknown) => errors.push(e));
    await keyv.set("big", "z".repeat(5000)).catch((e: unknown) => errors.push(e));
    assert.ok(errors.some((e) => e instanceof RangeError), `errors: ${errors}`);
    assert.equal(await keyv.get("big"), undefined);
    assert.throws(() => new KeyvShmCache({} as never), /must be a SharedCache or MemoryCache/);
    assert.throws(
      () => new KeyvShmCache(space.cache, { namespce: "x" } as never),
      /unknown option "namespce"/,
    );
  } finally {
    space.dispose();
  }
});

test("keyv: lib/keyv.ts imports nothing at run time (types only)", () => {
  const source = readFileSync(new URL("../lib/keyv.ts", import.meta.url), "utf8");
  const imports = source.split("\n").filter((line) => /^\s*import\s/.test(line));
  assert.ok(imports.length > 0);
  for (const line of imports) assert.match(line, /^import type /, line);
});
