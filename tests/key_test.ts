/**
 * Tests of the default key derivation of memoize: no collisions between
 * values that differ, equal keys for values equal as data, stable encodings
 * (so processes and runtimes agree), and TypeErrors for what it cannot
 * encode.
 */
import assert from "node:assert/strict";
import { test } from "./_harness.ts";
import { deriveKey, encodeKeyPart, MAX_KEY_DEPTH, memoizeKey } from "../lib/_key.ts";

class UserId {
  constructor(readonly id: number) {}
  [memoizeKey](): number {
    return this.id;
  }
}
class OrderId {
  constructor(readonly id: number) {}
  [memoizeKey](): number {
    return this.id;
  }
}

/** Argument lists that must all get different keys. */
const DISTINCT: unknown[][] = [
  [],
  [undefined],
  [null],
  [true],
  [false],
  [0],
  [-0],
  [1],
  [-1],
  [1.5],
  [NaN],
  [Infinity],
  [-Infinity],
  [1n],
  [-1n],
  ["1"],
  ["1n"],
  ["true"],
  ["null"],
  ["undefined"],
  [""],
  ["d1,"],
  ["\ud800"],
  ["\ufffd"],
  ["\ud800\udc00"],
  [[1, 2]],
  ["1,2"],
  [[[1], 2]],
  [[1, [2]]],
  [["1", 2]],
  [[]],
  [{}],
  [[undefined]],
  [[null]],
  [{ a: 1 }],
  [{ a: "1" }],
  [{ a: [1] }],
  [{ "a": 1, "b": 2 }],
  [{ "a,b": 1 }],
  [{ a: undefined }],
  [{ a: null }],
  [{ "1": 1 }],
  [{ 1: "1" }],
  [new Uint8Array([1, 2])],
  [new Uint8Array([1, 2, 0])],
  [new Int8Array([1, 2])],
  [new Uint16Array([1])],
  [new Float64Array([1])],
  [new ArrayBuffer(2)],
  [new DataView(new ArrayBuffer(2))],
  [new Date(0)],
  [new Date(1)],
  [new Date(NaN)],
  [new Map()],
  [new Set()],
  [new Map([[1, 2]])],
  [new Map([["1", 2]])],
  [new Set([1, 2])],
  [new Set(["1", "2"])],
  [new UserId(1)],
  [new OrderId(1)],
  [new UserId(2)],
  [1, 2],
  [12],
  ["1", "2"],
  ["12"],
  ["1", ""],
  ["", "1"],
  [1, undefined],
  [undefined, 1],
  [[1], 2],
  [[1, 2], []],
  [{ a: 1 }, { b: 2 }],
  ["s1:a"],
  ["a", "b"],
  ["s1:b", "a"],
];

test("deriveKey: different argument lists never share a key", () => {
  const seen = new Map<string, unknown[]>();
  for (const args of DISTINCT) {
    const key = deriveKey(args);
    const other = seen.get(key);
    assert.equal(other, undefined, `${show(args)} and ${show(other)} share the key ${key}`);
    seen.set(key, args);
  }
});

test("deriveKey: keys stay distinct after UTF-8 encoding (as a shared cache stores them)", () => {
  const encoder = new TextEncoder();
  const seen = new Set<string>();
  for (const args of DISTINCT) {
    const bytes = encoder.encode(deriveKey(args)).join(",");
    assert.equal(seen.has(bytes), false, `UTF-8 collision for ${show(args)}`);
    seen.add(bytes);
  }
});

test("deriveKey: equal data gives equal keys, whatever the key or insertion order", () => {
  const pairs: [unknown[], unknown[]][] = [
    [[{ a: 1, b: 2 }], [{ b: 2, a: 1 }]],
    [[{ x: { q: 1, p: [1, { z: 0, y: 0 }] } }], [{ x: { p: [1, { y: 0, z: 0 }], q: 1 } }]],
    [[Object.assign(Object.create(null), { a: 1 })], [{ a: 1 }]],
    [[new Map([["a", 1], ["b", 2]])], [new Map([["b", 2], ["a", 1]])]],
    [[new Set([3, 1, 2])], [new Set([1, 2, 3])]],
    [[new Uint8Array([1, 2, 3]).subarray(1)], [new Uint8Array([2, 3])]],
    [[new Date(5)], [new Date(5)]],
    [[new UserId(3)], [new UserId(3)]],
    [[NaN], [0 / 0]],
    // Holes are encoded as undefined (documented).
    [[[, 1]], [[undefined, 1]]],
  ];
  for (const [a, b] of pairs) assert.equal(deriveKey(a), deriveKey(b), show(a));
});

test("deriveKey: a shared (acyclic) reference is fine", () => {
  const shared = { n: 1 };
  assert.equal(deriveKey([{ a: shared, b: shared }]), deriveKey([{ a: { n: 1 }, b: { n: 1 } }]));
  assert.equal(deriveKey([shared, shared]), deriveKey([{ n: 1 }, { n: 1 }]));
});

test("deriveKey: encodings are fixed (the same in every process and runtime)", () => {
  // These strings are the format: changing one invalidates shared caches.
  const golden: [unknown[], string][] = [
    [[], ""],
    [[1], "d1,"],
    [[-0], "d-0,"],
    [[NaN, Infinity, -Infinity], "dNaN,dInfinity,d-Infinity,"],
    [[0.1 + 0.2], "d0.30000000000000004,"],
    [[1e21, 1e-7], "d1e+21,d1e-7,"],
    [[12345678901234567890n], "b12345678901234567890,"],
    [["héllo"], "s5:héllo"],
    [["\ud800x"], 'w"\\ud800x"'],
    [[true, false, null, undefined], "tfnu"],
    [[[1, "a"]], "[d1,s1:a]"],
    [[{ b: [2], a: 1 }], "{s1:ad1,s1:b[d2,]}"],
    [[new Uint8Array([0, 15, 255])], "B3:000fff"],
    [[new Date(Date.UTC(2024, 0, 1))], "D1704067200000,"],
    [[new Map([["k", 1]])], "Ms1:kd1,)"],
    [[new Set(["b", "a"])], "Ss1:as1:b)"],
    [[new UserId(7)], "Ks6:UserIdd7,"],
    [
      [new Int16Array([1])],
      `Xs10:Int16Array2:${
        new Uint8Array(new Int16Array([1]).buffer).join("") === "10" ? "0100" : "0001"
      }`,
    ],
  ];
  for (const [args, key] of golden) assert.equal(deriveKey(args), key, show(args));
});

test("deriveKey: functions, symbols, class instances and cycles are TypeErrors that name the argument", () => {
  assert.throws(() => deriveKey([1, () => 1]), {
    name: "TypeError",
    message: "memoize: argument 1 cannot be used in a key: functions are not encodable",
  });
  assert.throws(() => deriveKey([Symbol("s")]), {
    name: "TypeError",
    message: "memoize: argument 0 cannot be used in a key: symbols are not encodable",
  });
  assert.throws(() => deriveKey([0, { opts: { onDone: function done() {} } }]), {
    name: "TypeError",
    message:
      "memoize: argument 1 cannot be used in a key: functions are not encodable (at args[1].opts.onDone)",
  });
  assert.throws(
    () => deriveKey([[1, [2, Symbol.iterator]]]),
    /argument 0 .* symbols are not encodable \(at args\[0\]\[1\]\[1\]\)/,
  );
  assert.throws(() => deriveKey([{ "odd key": () => 0 }]), /\(at args\[0\]\["odd key"\]\)/);

  class Point {
    constructor(readonly x: number) {}
  }
  assert.throws(() => deriveKey([new Point(1)]), {
    name: "TypeError",
    message: "memoize: argument 0 cannot be used in a key: instances of Point cannot be encoded " +
      "(give the class a [memoizeKey]() method, or pass a key function)",
  });
  for (
    const instance of [
      new (class extends Array {})(),
      new Number(1),
      /re/,
      new Error("e"),
      Promise.resolve(),
      new WeakMap(),
    ]
  ) {
    assert.throws(() => deriveKey([instance]), TypeError, String(instance));
  }

  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = { back: cyclic };
  assert.throws(() => deriveKey(["x", cyclic]), {
    name: "TypeError",
    message:
      "memoize: argument 1 cannot be used in a key: cycles are not encodable (at args[1].self.back)",
  });
  const loop: unknown[] = [];
  loop.push(loop);
  assert.throws(() => deriveKey([loop]), /cycles are not encodable \(at args\[0\]\[0\]\)/);
  const map = new Map<string, unknown>();
  map.set("me", map);
  assert.throws(() => deriveKey([map]), /cycles are not encodable \(at args\[0\]\.get\("me"\)\)/);

  assert.throws(
    () => deriveKey([{ [Symbol("hidden")]: 1 }]),
    /symbol-keyed properties are not encodable/,
  );
  assert.throws(
    () => deriveKey([new Map([[() => 0, 1]])]),
    /functions are not encodable \(at args\[0\]<Map key/,
  );
  assert.throws(
    () => deriveKey([new Set([Symbol("s")])]),
    /symbols are not encodable \(at args\[0\]<Set element/,
  );
});

test("deriveKey: nesting is bounded", () => {
  let deep: unknown = 0;
  for (let i = 0; i < MAX_KEY_DEPTH; i++) deep = [deep];
  assert.equal(typeof deriveKey([deep]), "string");
  assert.throws(
    () => deriveKey([[deep]]),
    new RegExp(`nesting deeper than ${MAX_KEY_DEPTH} is not encodable`),
  );
});

test("deriveKey: a [memoizeKey]() method that returns something unencodable is named", () => {
  const bad = { [memoizeKey]: () => () => 0 };
  assert.throws(
    () => deriveKey([bad]),
    /functions are not encodable \(at args\[0\]\[memoizeKey\]\(\)\)/,
  );
  // A plain object with the method is encoded by it, not by its properties.
  const custom = { ignored: () => 0, [memoizeKey]: () => "id-1" };
  assert.equal(deriveKey([custom]), "Ks6:Objects4:id-1");
});

test("encodeKeyPart: encodes one value self-delimited, and names the part in errors", () => {
  assert.equal(encodeKeyPart(["a", 1], "this"), "[s1:ad1,]");
  assert.equal(encodeKeyPart(undefined, "this"), "u");
  assert.throws(
    () => encodeKeyPart(new (class Repo {})(), "this"),
    /memoize: this cannot be used in a key: instances of Repo/,
  );
});

/** A short rendering of a value for assertion messages, in both runtimes. */
function show(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? `${v}n` : v) ?? String(value);
  } catch {
    return String(value);
  }
}
