// Values and keys come back exactly, or set throws a TypeError naming the
// path (issue 11, points 1 and 2), in this runtime, in the other one, and
// across them.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  CacheError,
  type CodecName,
  memoize,
  MemoryCache,
  SharedCache,
  type SharedCacheOptions,
} from "../mod.ts";
import { decodeKey, encodeKey } from "../lib/codec.ts";
import { test } from "./_harness.ts";
import { root, runtimeCommand } from "./_proc.ts";
import { digest, exactEqual, randomEntries } from "./_values.ts";

const OPTIONS = { capacity: 4096, maxKeyBytes: 256, maxValueBytes: 8192 };
let seq = 0;

function withCache(
  options: Partial<SharedCacheOptions>,
  fn: (cache: SharedCache, dir: string, name: string) => void | Promise<void>,
) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "shmc-codec-"));
    const name = `codec-${process.pid}-${seq++}`;
    const cache = SharedCache.open(name, { ...OPTIONS, dir, ...options });
    try {
      await fn(cache, dir, name);
    } finally {
      cache.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function throwsType(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TypeError, `expected a TypeError, got ${e}`);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test("decodeKey: a key of no bytes (no tag; a foreign or corrupt slot) is not ours, whatever the buffer held", () => {
  // keys() and entries() decode the key a scan copied into the bound key
  // buffer; a zero-length key copies nothing, so the buffer still holds the
  // previous key's tag.
  const buf = new Uint8Array(16);
  const n = encodeKey("previous", buf, buf.length);
  assert.equal(decodeKey(buf, n), "previous");
  assert.equal(decodeKey(buf, 0), undefined);
});

test(
  "lone surrogates and U+FFFD are different keys, and string values keep them",
  withCache({}, (cache) => {
    // The reproduction: set("\uD800", 1); get("\uFFFD") returned 1.
    cache.set("\uD800", 1);
    assert.equal(cache.get("\uFFFD"), undefined);
    assert.equal(cache.has("\uFFFD"), false);
    cache.set("\uDFFF", 2);
    cache.set("\uFFFD", 3);
    cache.set("a\uD800b", 4);
    cache.set("a\uD83D\uDE00b", 5); // a pair: plain UTF-8
    assert.deepEqual(
      ["\uD800", "\uDFFF", "\uFFFD", "a\uD800b", "a\uD83D\uDE00b", "a\uFFFDb"].map((k) =>
        cache.get(k)
      ),
      [1, 2, 3, 4, 5, undefined],
    );
    for (const s of ["\uD800", "x\uDC00y", "\uDBFF\uDBFF", "\uDFFF\uD800", "é\uD800😀"]) {
      cache.set("v", s);
      assert.equal(cache.get("v"), s);
      cache.set("v", { s, [s]: [s] });
      assert.deepEqual(cache.get("v"), { s, [s]: [s] });
    }
    // Well-formed strings keep their UTF-8 bytes: a key "é" is 2 bytes.
    assert.throws(() => cache.set("é".repeat(129), 1), /258 bytes, more than maxKeyBytes 256/);
    // A lone surrogate takes 3 bytes, as in WTF-8.
    assert.throws(() => cache.set("\uD800".repeat(86), 1), /258 bytes, more than maxKeyBytes/);
    assert.throws(
      () => cache.set("k", "\uD800".repeat(2731)),
      /8193 bytes encoded, more than maxValueBytes 8192/,
    );
  }),
);

test(
  "SharedCache and MemoryCache agree on lone-surrogate keys",
  withCache({}, (cache) => {
    const memory = new MemoryCache();
    const keys = ["\uD800", "\uDFFF", "\uFFFD", "\uD800\uDC00", "\uD800\uFFFD"];
    keys.forEach((k, i) => {
      cache.set(k, i);
      memory.set(k, i);
    });
    assert.deepEqual(keys.map((k) => cache.get(k)), keys.map((k) => memory.get(k)));
    assert.deepEqual(keys.map((k) => cache.get(k)), [0, 1, 2, 3, 4]);
  }),
);

test("memoize over a shared cache with key (s) => s keeps lone surrogates apart", () => {
  const dir = mkdtempSync(join(tmpdir(), "shmc-codec-"));
  try {
    const f = memoize((s: string) => `len ${s.length} ${s.charCodeAt(0)}`, {
      cache: "shared",
      name: `codec-memo-${process.pid}`,
      key: (s) => s,
      shared: { dir },
    });
    assert.equal(f("\uD800"), "len 1 55296");
    assert.equal(f("\uFFFD"), "len 1 65533");
    assert.equal(f("\uD800"), "len 1 55296");
    f.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "json codec: what JSON would change is a TypeError naming the path, and nothing is stored",
  withCache({}, (cache) => {
    cache.set("k", "before");
    // The reproduction: this read back as { d: "1970-...", m: {}, p: {} }.
    throwsType(
      () => cache.set("k", { d: new Date(0), m: new Map(), p: Promise.resolve(1) }),
      'value.d: Date is not storable; use codec: "structured"',
    );
    throwsType(
      () => cache.set("k", { m: new Map() }),
      'value.m: Map is not storable; use codec: "structured"',
    );
    throwsType(
      () => cache.set("k", { p: Promise.resolve(1) }),
      /^value\.p: an instance of Promise is not storable/,
    );
    throwsType(
      () => cache.set("k", { x: NaN }),
      'value.x: NaN is not storable as JSON (it reads back as null); use codec: "structured"',
    );
    const cases: [unknown, string | RegExp][] = [
      [{ x: Infinity }, /^value\.x: Infinity is not storable as JSON/],
      [[1, -Infinity], /^value\[1\]: -Infinity is not storable/],
      [
        { a: { b: -0 } },
        'value.a.b: -0 is not storable as JSON (it reads back as 0); use codec: "structured"',
      ],
      // deno-lint-ignore no-sparse-arrays
      [[1, , 3], /^value\[1\]: undefined \(or a hole\) in an array is not storable as JSON/],
      [[undefined], /^value\[0\]: undefined \(or a hole\) in an array/],
      [{ s: new Set() }, 'value.s: Set is not storable; use codec: "structured"'],
      [{ r: /x/ }, 'value.r: RegExp is not storable; use codec: "structured"'],
      [
        { b: 1n },
        /^value\.b: a bigint inside an object or array is not storable as JSON; use codec/,
      ],
      [
        { t: new Float64Array(1) },
        'value.t: Float64Array is not storable; use codec: "structured"',
      ],
      [{ u: new Uint8Array(1) }, 'value.u: Uint8Array is not storable; use codec: "structured"'],
      [{ f() {} }, "value.f: function f is not storable"],
      [{ s: Symbol("q") }, "value.s: Symbol(q) is not storable"],
      [
        { "odd key": [{ c: new (class Point {})() }] },
        /^value\["odd key"\]\[0\]\.c: an instance of Point is not storable \(only plain objects and arrays are; a class can define toJSON\)/,
      ],
      [new (class Point {})(), /^value: an instance of Point is not storable/],
      [new Date(0), 'value: Date is not storable; use codec: "structured"'],
      [new Map(), 'value: Map is not storable; use codec: "structured"'],
      [Promise.resolve(1), /^value: an instance of Promise is not storable/],
      [() => 1, /^value: function .* is not storable/],
      [Symbol("s"), "value: Symbol(s) is not storable"],
      [new Number(1), /^value: an instance of Number is not storable/],
    ];
    for (const [value, message] of cases) throwsType(() => cache.set("k", value), message);
    const cycle: Record<string, unknown> = { a: { b: 1 } };
    (cycle.a as Record<string, unknown>).back = cycle;
    throwsType(
      () => cache.set("k", cycle),
      'value.a.back: a cycle (back to an enclosing object) is not storable as JSON; use codec: "structured"',
    );
    // A deep but acyclic value is not mistaken for a cycle.
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = [deep];
    cache.set("deep", deep);
    assert.deepEqual(cache.get("deep"), deep);
    assert.equal(cache.get("k"), "before");
    // add refuses the same way.
    throwsType(() => cache.add("new", { x: NaN }), /^value\.x: NaN/);
    assert.equal(cache.has("new"), false);
  }),
);

test(
  "json codec: undefined properties are dropped and toJSON is honoured, as documented",
  withCache({}, (cache) => {
    cache.set("k", { a: 1, b: undefined });
    assert.deepEqual(cache.get("k"), { a: 1 });
    class Money {
      constructor(readonly cents: number) {}
      toJSON(key: string) {
        return { cents: this.cents, key };
      }
    }
    cache.set("k", { price: new Money(5), list: [new Money(6)] });
    assert.deepEqual(cache.get("k"), {
      price: { cents: 5, key: "price" },
      list: [{ cents: 6, key: "0" }],
    });
    cache.set("k", new Money(7));
    assert.deepEqual(cache.get("k"), { cents: 7, key: "" });
    // What toJSON returns is checked like any value.
    throwsType(
      () => cache.set("k", { a: { toJSON: () => NaN } }),
      /^value\.a: NaN is not storable as JSON/,
    );
    // toJSON returning undefined drops the property, as JSON does.
    cache.set("k", { a: { toJSON: () => undefined }, b: 2 });
    assert.deepEqual(cache.get("k"), { b: 2 });
    // A key "__proto__" stays a property.
    const odd = JSON.parse('{"__proto__": {"x": 1}, "toJSON": 3}');
    cache.set("k", odd);
    assert.ok(exactEqual(cache.get("k"), odd));
    // Top-level NaN, -0, Infinity and bigint have tags of their own: exact.
    for (const v of [NaN, -0, Infinity, -Infinity, 2n ** 70n, undefined]) {
      cache.set("k", v);
      assert.ok(Object.is(cache.get("k"), v));
    }
  }),
);

test(
  'codec: "structured" round-trips what structured clone copies',
  withCache({ codec: "structured" }, (cache) => {
    const cycle: Record<string, unknown> = { name: "loop" };
    cycle.self = cycle;
    const shared = { s: 1 };
    // deno-lint-ignore no-sparse-arrays
    const sparse = [1, , undefined, 3];
    const values: unknown[] = [
      { d: new Date(0), m: new Map<unknown, unknown>([[1, "a"], [{ k: 1 }, new Set([1])]]) },
      { r: /a+b/giu, big: -(2n ** 100n), n: [NaN, Infinity, -Infinity, -0] },
      { u: undefined, arr: sparse },
      {
        bytes: new Uint8Array([1, 2]),
        f: new Float64Array([1.5, -0]),
        i: new BigInt64Array([-1n]),
      },
      Object.assign(Object.create(null), { a: 1 }),
      cycle,
      [shared, shared],
      new Date(12345),
      new Map([["x", new Map([["y", 1]])]]),
      { s: "\uD800 lone", [String.fromCharCode(0xdc00)]: 1 },
      { plain: [1, "two", { three: true }] },
    ];
    values.forEach((value, i) => {
      cache.set("k", value);
      assert.ok(exactEqual(cache.get("k"), value), `value ${i} is not exact`);
    });
    cache.set("k", [shared, shared]);
    const pair = cache.get("k") as object[];
    assert.equal(pair[0], pair[1], "shared references stay shared");
    const loop = cache.get("k") as Record<string, unknown>;
    assert.ok(loop !== undefined);
    // What structured clone refuses too is a TypeError with the path.
    throwsType(
      () => cache.set("k", { f() {} }),
      /^value\.f: function f is not storable by the structured codec/,
    );
    throwsType(() => cache.set("k", { p: Promise.resolve(1) }), /^value.*Promise.*not storable/);
    throwsType(
      () => cache.set("k", new (class Point {})()),
      /^value: an instance of Point is not storable/,
    );
    throwsType(() => cache.set("k", { s: Symbol("x") }), /^value\.s: Symbol\(x\) is not storable/);
    throwsType(
      // (Plain JSON data with such a key is stored as JSON, exactly.)
      () =>
        cache.set("k", Object.assign(JSON.parse('{"a": {"__proto__": 1}}'), { d: new Date(0) })),
      /^value\.a: an object is not storable by the structured codec \(Cannot stringify objects with __proto__ keys\)/,
    );
  }),
);

test(
  "the codec is recorded in the region: another codec at open is Mismatch naming it; none adopts it",
  withCache({ codec: "structured" }, (cache, dir, name) => {
    cache.set("k", { d: new Date(0) });
    assert.throws(
      () => SharedCache.open(name, { ...OPTIONS, dir, codec: "json" }),
      (e: unknown) =>
        e instanceof CacheError && e.code === "Mismatch" &&
        /exists with codec "structured", but "json" was requested/.test(e.message),
    );
    assert.throws(
      () => SharedCache.open(name, { ...OPTIONS, dir, codec: "cbor" as CodecName }),
      /codec must be "json" or "structured", got "cbor"/,
    );
    // Left out, the cache's codec is used: this handle reads and writes Dates too.
    using attached = SharedCache.open(name, { dir });
    assert.ok(exactEqual(attached.get("k"), { d: new Date(0) }));
    attached.set("k2", new Set([1]));
    assert.ok(exactEqual(cache.get("k2"), new Set([1])));
    using again = SharedCache.open(name, { ...OPTIONS, dir, codec: "structured" });
    assert.ok(exactEqual(again.get("k"), { d: new Date(0) }));
  }),
);

for (const codec of ["json", "structured"] as const) {
  test(
    `property: seeded random keys and values round-trip exactly (${codec} codec), in this runtime and the other`,
    withCache({ codec }, async (cache, dir, name) => {
      const count = 300;
      const seed = 0x5eed + (codec === "json" ? 0 : 1);
      const entries = randomEntries(seed, count, codec);
      for (const [key, value] of entries) cache.set(key, value);
      for (const [key, value] of entries) {
        assert.ok(exactEqual(cache.get(key), value), `seed ${seed}: ${String(key)}`);
      }
      // Lone-surrogate keys did not merge with their U+FFFD twins.
      assert.equal(cache.size, count);
      const other = typeof (globalThis as { Bun?: unknown }).Bun === "undefined" ? "bun" : "deno";
      const out = await runChild(other, [
        dir,
        name,
        codec,
        String(seed),
        String(seed + 100),
        String(count),
      ]);
      assert.match(out, new RegExp(`^checked ${count}$`, "m"), out);
      const theirs = /^digest (\w+)$/m.exec(out)?.[1];
      assert.equal(theirs, digest(entries.map((e) => e[1]), codec), "both runtimes encode alike");
      for (const [key, value] of randomEntries(seed + 100, count, codec)) {
        assert.ok(exactEqual(cache.get(key), value), `written by ${other}: ${String(key)}`);
      }
    }),
    { timeoutMs: 60_000 },
  );
}

/** Runs the codec child under `runtime`, bounded, and returns its stdout. */
function runChild(runtime: "deno" | "bun", args: string[]): Promise<string> {
  const [cmd, argv] = runtimeCommand(runtime, join(root, "tests/fixtures/codec_child.ts"), args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 45_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${runtime} codec child exited ${code}: ${out}\n${err}`));
    });
  });
}

test(
  "immutable: true returns deeply frozen objects, shared by repeated hits on an unchanged entry",
  withCache({ immutable: true }, (cache, dir, name) => {
    cache.set("k", { a: [1, { b: 2 }], s: "x" });
    const first = cache.get("k") as { a: [number, { b: number }] };
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.a) && Object.isFrozen(first.a[1]));
    assert.throws(() => {
      "use strict";
      (first.a[1] as { b: number }).b = 3;
    }, TypeError);
    const memoHits = cache.stats().memoHits;
    assert.equal(cache.get("k"), first, "a repeated hit returns the same object");
    assert.equal(cache.stats().memoHits, memoHits + 1);
    // Any write, by any handle, is seen at once.
    using other = SharedCache.open(name, { ...OPTIONS, dir });
    other.set("k", { a: [], s: "y" });
    assert.deepEqual(cache.get("k"), { a: [], s: "y" });
    assert.notEqual(cache.get("k"), first);
    // Without immutable, every hit is a fresh, mutable object.
    other.set("k", { a: [1] });
    const mine = other.get("k") as { a: number[] };
    assert.ok(!Object.isFrozen(mine));
    assert.notEqual(other.get("k"), mine);
    // Bytes stay fresh copies.
    cache.set("b", new Uint8Array([1]));
    assert.notEqual(cache.get("b"), cache.get("b"));
    throwsType(
      () => SharedCache.open(name, { ...OPTIONS, dir, immutable: "yes" as unknown as boolean }),
      'immutable must be a boolean, got "yes"',
    );
  }),
);

test(
  "immutable with the structured codec: plain values frozen and shared, Map/Date values fresh",
  withCache({ immutable: true, codec: "structured" }, (cache) => {
    const cycle: Record<string, unknown> = { n: NaN };
    cycle.self = cycle;
    cache.set("k", cycle);
    const got = cache.get("k") as Record<string, unknown>;
    assert.ok(Object.isFrozen(got) && got.self === got && Number.isNaN(got.n));
    assert.equal(cache.get("k"), got);
    cache.set("m", { m: new Map([[1, 2]]), d: new Date(0) });
    const m1 = cache.get("m") as { m: Map<number, number> };
    assert.ok(!Object.isFrozen(m1));
    assert.notEqual(cache.get("m"), m1);
    m1.m.set(3, 4);
    assert.deepEqual([...(cache.get("m") as { m: Map<number, number> }).m], [[1, 2]]);
  }),
);

test('memoize with shared: { codec: "structured" } caches a Date result exactly', () => {
  const dir = mkdtempSync(join(tmpdir(), "shmc-codec-"));
  try {
    let calls = 0;
    const f = memoize((n: number) => {
      calls++;
      return { at: new Date(n), tags: new Set([n]) };
    }, {
      cache: "shared",
      name: `codec-memo-structured-${process.pid}`,
      shared: { dir, codec: "structured", immutable: true },
    });
    const first = f(5);
    const second = f(5);
    assert.equal(calls, 1);
    assert.ok(exactEqual(second, { at: new Date(5), tags: new Set([5]) }));
    assert.ok(exactEqual(first, second));
    f.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "keys() and entries() give lone-surrogate keys back exactly",
  withCache({}, (cache) => {
    const keys = ["\uD800", "\uFFFD", "a\uDC00", "plain", "é"];
    keys.forEach((k, i) => cache.set(k, i));
    assert.deepEqual([...cache.keys()].sort(), [...keys].sort());
    const entries = new Map([...cache.entries()] as [string, unknown][]);
    keys.forEach((k, i) => assert.equal(entries.get(k), i));
  }),
);
