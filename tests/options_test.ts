// Strict arguments (issue 11, point 5): a non-object options argument and an
// unknown option name are a TypeError naming the argument, with a suggestion
// when a known name is close. Never silently ignored.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoize, MemoryCache, SharedCache, type SharedCacheOptions } from "../mod.ts";
import { test } from "./_harness.ts";

const GEOMETRY = { capacity: 16, maxKeyBytes: 32, maxValueBytes: 256 };

function withCache(fn: (cache: SharedCache, dir: string) => void) {
  return () => {
    const dir = mkdtempSync(join(tmpdir(), "shmc-options-"));
    const cache = SharedCache.open(`options-${process.pid}`, { ...GEOMETRY, dir });
    try {
      fn(cache, dir);
    } finally {
      cache.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function throwsType(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TypeError, `expected a TypeError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test(
  "SharedCache.set/add: a number as the third argument is a TypeError, and nothing is stored",
  withCache((cache) => {
    // The reproduction: set(k, v, 5000) used to store with no TTL.
    throwsType(
      () => cache.set("k", 1, 5000 as unknown as { ttlMs: number }),
      /SharedCache\.set options \(the third argument\) must be an object such as \{ ttlMs: 5000 \}, got 5000/,
    );
    throwsType(
      () => cache.add("k", 1, 5000 as unknown as { ttlMs: number }),
      /SharedCache\.add options \(the third argument\) must be an object/,
    );
    throwsType(() => cache.set("k", 1, null as unknown as { ttlMs: number }), /got null/);
    assert.equal(cache.has("k"), false);
  }),
);

test(
  "SharedCache.set: { ttl: 5 } is a TypeError suggesting ttlMs, and nothing is stored",
  withCache((cache) => {
    throwsType(
      () => cache.set("k", 1, { ttl: 5 } as unknown as { ttlMs: number }),
      /SharedCache\.set options \(the third argument\): unknown option "ttl"; did you mean `ttlMs`\?/,
    );
    throwsType(
      () => cache.set("k", 1, { TTLms: 5 } as unknown as { ttlMs: number }),
      /did you mean `ttlMs`\?/,
    );
    throwsType(
      () => cache.set("k", 1, { expires: 5 } as unknown as { ttlMs: number }),
      /unknown option "expires" \(known options: ttlMs\)/,
    );
    assert.equal(cache.has("k"), false);
    cache.set("k", 1, { ttlMs: 60_000 });
    cache.set("k", 1, {});
    cache.set("k", 1, undefined);
    assert.equal(cache.get("k"), 1);
  }),
);

test(
  "CacheLock.set: unknown option names and non-objects are refused",
  withCache((cache) => {
    using tx = cache.lock();
    throwsType(() => tx.set("k", 1, 5000 as unknown as { ttlMs: number }), /CacheLock\.set/);
    throwsType(
      () => tx.set("k", 1, { ttl: 5 } as unknown as { ttlMs: number }),
      /did you mean `ttlMs`\?/,
    );
    assert.equal(tx.has("k"), false);
  }),
);

test("SharedCache.open: an unknown option is a TypeError naming it, with a suggestion", () => {
  const dir = mkdtempSync(join(tmpdir(), "shmc-options-"));
  try {
    const open = (extra: Record<string, unknown>) =>
      SharedCache.open(`options-open-${process.pid}`, {
        ...GEOMETRY,
        dir,
        ...extra,
      } as SharedCacheOptions);
    throwsType(
      () => open({ ttl: 5 }),
      /SharedCache\.open options: unknown option "ttl"; did you mean `ttlMs`\?/,
    );
    throwsType(() => open({ maxKeyByte: 5 }), /did you mean `maxKeyBytes`\?/);
    throwsType(() => open({ capcity: 5 }), /did you mean `capacity`\?/);
    throwsType(() => open({ lockTimeout: 5 }), /did you mean `lockTimeoutMs`\?/);
    throwsType(() => open({ zzz: 1 }), /unknown option "zzz" \(known options: capacity,/);
    // Nothing was created by a refused open.
    open({}).close();
    SharedCache.destroy(`options-open-${process.pid}`, { dir });
    throwsType(
      () => SharedCache.destroy("x", { dri: dir } as unknown as { dir: string }),
      /did you mean `dir`\?/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "SharedCache.verify: an unknown option is refused",
  withCache((cache) => {
    throwsType(
      () => cache.verify({ repiar: true } as unknown as { repair: boolean }),
      /did you mean `repair`\?/,
    );
    assert.equal(cache.verify({ repair: false }).ok, true);
  }),
);

test("MemoryCache: unknown options and a non-object third argument are TypeErrors", () => {
  throwsType(
    () => new MemoryCache({ ttl: 5 } as unknown as { ttlMs: number }),
    /MemoryCache options: unknown option "ttl"; did you mean `ttlMs`\?/,
  );
  throwsType(() => new MemoryCache({ maxsize: 5 } as unknown as { maxSize: number }), /`maxSize`/);
  throwsType(() => new MemoryCache(5 as unknown as { ttlMs: number }), /must be an object/);
  const cache = new MemoryCache();
  throwsType(
    () => cache.set("k", 1, 5000 as unknown as { ttlMs: number }),
    /MemoryCache\.set options \(the third argument\) must be an object such as \{ ttlMs: 5000 \}/,
  );
  throwsType(
    () => cache.set("k", 1, { ttl: 5 } as unknown as { ttlMs: number }),
    /did you mean `ttlMs`\?/,
  );
  assert.equal(cache.has("k"), false);
});

test("memoize: an unknown option or shared option is a TypeError at memoize time", () => {
  const f = (x: number) => x;
  throwsType(
    () => memoize(f, { ttl: 5 } as unknown as { ttlMs: number }),
    /memoize options: unknown option "ttl"; did you mean `ttlMs`\?/,
  );
  throwsType(
    () => memoize(f, { chache: "shared" } as unknown as { cache: "shared" }),
    /did you mean `cache`\?/,
  );
  throwsType(
    () =>
      memoize(f, {
        cache: "shared",
        shared: { maxValueByte: 10 } as unknown as { maxValueBytes: 10 },
      }),
    /memoize options\.shared: unknown option "maxValueByte"; did you mean `maxValueBytes`\?/,
  );
  throwsType(() => memoize(f, 5 as unknown as { ttlMs: number }), /must be an object/);
});
