/**
 * The cache's lifecycle across processes of both runtimes: destroy, an
 * open with onMismatch "replace", an operator's `rm`, and `mv` of another
 * cache file over the name, while Deno and Bun children have the cache
 * open. The rule under test: a cache may lose its entries, it must not
 * split (no handle keeps using a region the others left). Each child
 * stores what it read under "seen:<pid>" before printing it, so the parent
 * reading that key through its own handle proves both use one region.
 */

import assert from "node:assert/strict";
import {
  linkSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { setImmediate } from "node:timers";
import { CacheError, SharedCache } from "../mod.ts";
import { test } from "./_harness.ts";
import { Child, root, type Runtime, Scope } from "./_proc.ts";

const script = join(root, "tests/fixtures/lifecycle_child.ts");
const G = { capacity: 100, maxKeyBytes: 32, maxValueBytes: 64 };
const B = { capacity: 200, maxKeyBytes: 48, maxValueBytes: 128 };
const RUNTIMES: Runtime[] = ["deno", "bun"];
/** A hang guard only: every wait ends at the line awaited. */
const WAIT_MS = 10_000;

function child(scope: Scope, runtime: Runtime, name: string, options: object): Child {
  const c = new Child(runtime, [scope.dir, name, JSON.stringify(options)], {}, script);
  scope.children.push(c);
  return c;
}

/** Waits for `c` to print exactly `line`, skipping the lines before it. */
async function expectLine(c: Child, line: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const got = await c.line("", Math.max(1, deadline - Date.now()));
    if (got === line) return;
    if (got.startsWith("error") && !line.startsWith("error")) {
      throw new Error(`child ${c.pid} printed ${got} while waiting for ${line}: ${c.stderr}`);
    }
  }
}

function cacheFiles(dir: string): string[] {
  return readdirSync(dir).sort();
}

test("destroy while open: handles with geometry recreate, attach-only ones throw NotFound until it exists again", async () => {
  const scope = new Scope();
  const name = "destroyed";
  const parent = SharedCache.open(name, { ...G, dir: scope.dir });
  try {
    parent.set("epoch", 1);
    const attachers = RUNTIMES.map((r) => child(scope, r, name, {}));
    const creators = RUNTIMES.map((r) => child(scope, r, name, G));
    for (const c of [...attachers, ...creators]) await expectLine(c, `epoch 1 ${G.capacity}`);
    // Phase 1: only the attach-only children run (real SIGSTOP keeps the
    // others from recreating the cache before they look).
    for (const c of creators) c.kill("SIGSTOP");
    SharedCache.destroy(name, { dir: scope.dir });
    for (const c of attachers) await expectLine(c, "error NotFound");
    // Phase 2: the others move to a new region of their own geometry.
    for (const c of creators) c.kill("SIGCONT");
    for (const c of creators) await expectLine(c, `epoch null ${G.capacity}`);
    // The parent moves too (to the children's region), and everyone reads
    // what it writes there; the attach-only children find it again.
    parent.set("epoch", 2);
    for (const c of [...attachers, ...creators]) await expectLine(c, `epoch 2 ${G.capacity}`);
    for (const c of [...attachers, ...creators]) assert.equal(parent.get(`seen:${c.pid}`), 2);
    assert.deepEqual(cacheFiles(scope.dir), [`${name}.shmc`]);
  } finally {
    parent.close();
    await scope.cleanup();
  }
});

test('onMismatch "replace" while Deno and Bun children have the cache open: they move, nothing splits', async () => {
  const scope = new Scope();
  const name = "replaced";
  const first = SharedCache.open(name, { ...G, dir: scope.dir });
  try {
    first.set("epoch", "A");
    const before = statSync(join(scope.dir, `${name}.shmc`)).ino;
    const children = RUNTIMES.flatMap((r) => [child(scope, r, name, G), child(scope, r, name, {})]);
    for (const c of children) await expectLine(c, `epoch "A" ${G.capacity}`);
    assert.throws(
      () => SharedCache.open(name, { ...B, dir: scope.dir }),
      (e) => e instanceof CacheError && e.code === "Mismatch",
    );
    using second = SharedCache.open(name, { ...B, dir: scope.dir, onMismatch: "replace" });
    second.set("epoch", "B");
    // Every child, whatever geometry it opened with, moved to B's region
    // (it attaches, never replaces back) and writes there.
    for (const c of children) await expectLine(c, `epoch "B" ${B.capacity}`);
    for (const c of children) assert.equal(second.get(`seen:${c.pid}`), "B");
    // So did this process's own old handle, on its next operation.
    assert.equal(first.get("epoch"), "B");
    assert.equal(first.stats().capacity, B.capacity);
    assert.equal(first.verify().ok, true);
    // One file under the name, a new inode, no temporary file left.
    assert.deepEqual(cacheFiles(scope.dir), [`${name}.shmc`]);
    assert.notEqual(statSync(join(scope.dir, `${name}.shmc`)).ino, before);
    // A value as large as B allows, which A's buffers could not hold.
    first.set("big", "x".repeat(B.maxValueBytes - 8));
    assert.equal(second.get("big"), "x".repeat(B.maxValueBytes - 8));
  } finally {
    first.close();
    await scope.cleanup();
  }
});

test("rm of the file, and mv of another cache over it, are noticed by open handles of both runtimes", async () => {
  const scope = new Scope();
  const name = "removed";
  const file = join(scope.dir, `${name}.shmc`);
  const parent = SharedCache.open(name, { ...G, dir: scope.dir });
  try {
    parent.set("epoch", "first");
    const children = RUNTIMES.map((r) => child(scope, r, name, G));
    for (const c of children) await expectLine(c, `epoch "first" ${G.capacity}`);
    // rm: the children's watch notices; they recreate with their geometry.
    rmSync(file);
    for (const c of children) await expectLine(c, `epoch null ${G.capacity}`);
    // mv: another cache's file over the name; the children attach to it.
    {
      using other = SharedCache.open("other", { ...B, dir: scope.dir });
      other.set("epoch", "other");
    }
    renameSync(join(scope.dir, "other.shmc"), file);
    for (const c of children) await expectLine(c, `epoch "other" ${B.capacity}`);
    assert.equal(parent.get("epoch"), "other");
    for (const c of children) assert.equal(parent.get(`seen:${c.pid}`), "other");
  } finally {
    parent.close();
    await scope.cleanup();
  }
});

test("a handle holding lock() does not move: its guard throws Retired, and the handle moves once released", () => {
  const scope = new Scope();
  try {
    using cache = SharedCache.open("locked", { ...G, dir: scope.dir });
    cache.set("a", 1);
    const tx = cache.lock();
    SharedCache.destroy("locked", { dir: scope.dir });
    for (const op of [() => tx.get("a"), () => tx.set("b", 2), () => tx.delete("a")]) {
      assert.throws(op, (e) => e instanceof CacheError && e.code === "Retired");
    }
    tx.release();
    assert.equal(cache.get("a"), undefined);
    cache.set("b", 2);
    assert.equal(cache.get("b"), 2);
    assert.equal(cache.increment("n"), 1);
    assert.deepEqual(cacheFiles(scope.dir), ["locked.shmc"]);
  } finally {
    void scope.cleanup();
  }
});

test("every operation moves after a destroy: increment, setMany, has, delete, clear, size, stats, verify, keys", () => {
  const scope = new Scope();
  try {
    using cache = SharedCache.open("ops", { ...G, dir: scope.dir });
    const ops: Array<[string, () => unknown, unknown]> = [
      ["increment", () => cache.increment("n", 2), 2],
      ["setMany", () => cache.setMany([["a", 1], ["b", 2]]), 2],
      ["has", () => cache.has("a"), false],
      ["delete", () => cache.delete("a"), false],
      ["clear", () => cache.clear(), undefined],
      ["size", () => cache.size, 0],
      ["stats", () => cache.stats().size, 0],
      ["verify", () => cache.verify().ok, true],
      ["keys", () => [...cache.keys()], []],
      ["add", () => cache.add("x", 1), true],
      ["getOrSet", () => cache.getOrSet("g", () => 7), 7],
    ];
    for (const [what, op, expected] of ops) {
      cache.set("stale", 1);
      SharedCache.destroy("ops", { dir: scope.dir });
      assert.deepEqual(op(), expected, what);
      assert.equal(cache.get("stale"), undefined, what);
    }
  } finally {
    void scope.cleanup();
  }
});

test("increment and setMany move again when the cache is destroyed again during the retry, and give up with a plain Retired", () => {
  const scope = new Scope();
  try {
    using cache = SharedCache.open("again", { ...G, dir: scope.dir });
    // The options are read inside the operation, after its first try has
    // begun: each read destroys the cache once more.
    let destroys = 0;
    const destroying = (limit: number) => ({
      get ttlMs() {
        if (destroys < limit) {
          destroys++;
          SharedCache.destroy("again", { dir: scope.dir });
        }
        return 60_000;
      },
    });
    destroys = 0;
    assert.equal(cache.increment("n", 3, destroying(2)), 3);
    assert.equal(destroys, 2);
    assert.equal(cache.get("n"), 3);
    destroys = 0;
    assert.equal(cache.setMany([["a", 1], ["b", 2]], destroying(2)), 2);
    assert.equal(destroys, 2);
    assert.equal(cache.get("b"), 2);
    // Destroyed at every try: past the bound it is a plain CacheError.
    for (
      const op of [
        () => cache.increment("n", 1, destroying(100)),
        () => cache.setMany([["c", 3]], destroying(100)),
      ]
    ) {
      destroys = 0;
      assert.throws(
        op,
        (e: unknown) =>
          e instanceof CacheError && e.constructor === CacheError && e.code === "Retired" &&
          /destroyed or replaced \d+ times during the operation/.test(e.message),
      );
    }
  } finally {
    void scope.cleanup();
  }
});

test("a promise record set before a destroy is not stored in the new region when it settles", async () => {
  const scope = new Scope();
  try {
    using a = SharedCache.open("pending", { ...G, dir: scope.dir });
    let resolve!: (v: string) => void;
    const value = new Promise<string>((r) => resolve = r);
    a.set("k", { kind: "promise", value });
    SharedCache.destroy("pending", { dir: scope.dir });
    using b = SharedCache.open("pending", { ...G, dir: scope.dir });
    assert.equal(b.get("k"), undefined);
    assert.equal(a.size, 0); // a native operation: a moves to b's region
    assert.equal(a.get("k"), undefined, "the moved handle forgot the record of the old region");
    resolve("before the destroy");
    await value;
    await new Promise<void>((r) => setImmediate(r)); // after every reaction to the settled promise
    assert.equal(b.get("k"), undefined);
    assert.equal(a.get("k"), undefined);
  } finally {
    void scope.cleanup();
  }
});

test("keys() goes on over the new region when the cache is replaced during the iteration", () => {
  const scope = new Scope();
  try {
    using cache = SharedCache.open("iter", { ...G, dir: scope.dir });
    for (let i = 0; i < 5; i++) cache.set(`old${i}`, i);
    const seen: unknown[] = [];
    for (const key of cache.keys()) {
      seen.push(key);
      if (seen.length === 1) {
        using next = SharedCache.open("iter", { ...B, dir: scope.dir, onMismatch: "replace" });
        next.set("new", 1);
      }
    }
    assert.equal(seen.length, 2);
    assert.equal(seen[1], "new");
  } finally {
    void scope.cleanup();
  }
});

test('a file of another format is Mismatch naming both formats; onMismatch "replace" rebuilds it untouched', () => {
  const scope = new Scope();
  try {
    SharedCache.open("old", { ...G, dir: scope.dir }).close();
    const file = join(scope.dir, "old.shmc");
    const bytes = readFileSync(file);
    const format = bytes.readUInt32LE(8);
    bytes.writeUInt32LE(format - 1, 8);
    writeFileSync(file, bytes);
    assert.throws(
      () => SharedCache.open("old", { ...G, dir: scope.dir }),
      (e) =>
        e instanceof CacheError && e.code === "Mismatch" &&
        e.message.includes(`format ${format - 1}`) && e.message.includes(`format ${format}`) &&
        e.message.includes("replace"),
    );
    // A second name for the old file, to read it after the replace.
    const keep = join(scope.dir, "kept.bin");
    linkSync(file, keep);
    const oldBytes = readFileSync(file);
    using cache = SharedCache.open("old", { ...G, dir: scope.dir, onMismatch: "replace" });
    cache.set("a", 1);
    assert.equal(cache.get("a"), 1);
    // Another format's file is not written (its retired word may be
    // elsewhere): the unlinked original still holds its bytes.
    assert.deepEqual(readFileSync(keep), oldBytes);
  } finally {
    void scope.cleanup();
  }
});

test("onMismatch is checked, and replace needs the geometry", () => {
  const scope = new Scope();
  try {
    SharedCache.open("opt", { ...G, dir: scope.dir }).close();
    assert.throws(
      () =>
        SharedCache.open("opt", {
          dir: scope.dir,
          onMismatch: "overwrite" as unknown as "replace",
        }),
      (e) => e instanceof TypeError && e.message.includes("overwrite"),
    );
    assert.throws(
      () => SharedCache.open("opt", { dir: scope.dir, ttlMs: 5, onMismatch: "replace" }),
      (e) => e instanceof RangeError && e.message.includes("needs capacity"),
    );
    // Matching options: nothing is replaced.
    using same = SharedCache.open("opt", { ...G, dir: scope.dir, onMismatch: "replace" });
    same.set("a", 1);
    using again = SharedCache.open("opt", { ...G, dir: scope.dir, onMismatch: "replace" });
    assert.equal(again.get("a"), 1);
  } finally {
    void scope.cleanup();
  }
});

test("a handle that moves adopts the new region's codec and limits", () => {
  const scope = new Scope();
  try {
    using json = SharedCache.open("codec", { ...G, dir: scope.dir });
    assert.throws(() => json.set("m", new Map([[1, 2]])), TypeError);
    using structured = SharedCache.open("codec", {
      ...B,
      codec: "structured",
      dir: scope.dir,
      onMismatch: "replace",
    });
    // The value is encoded before the native call that finds the region
    // replaced: the first operation after the replace decides with the old
    // codec, as if it had run just before; the next ones use the new one.
    assert.equal(json.get("m"), undefined);
    json.set("m", new Map([[1, 2]]));
    assert.deepEqual(structured.get("m"), new Map([[1, 2]]));
    assert.equal(json.stats().capacity, B.capacity);
  } finally {
    void scope.cleanup();
  }
});

test("a destroyed region put back under the name by hand is refused, and replace rebuilds it", () => {
  const scope = new Scope();
  try {
    const file = join(scope.dir, "back.shmc");
    const kept = join(scope.dir, "kept.bin");
    SharedCache.open("back", { ...G, dir: scope.dir }).close();
    linkSync(file, kept);
    SharedCache.destroy("back", { dir: scope.dir });
    renameSync(kept, file);
    assert.throws(
      () => SharedCache.open("back", { dir: scope.dir }),
      (e) => e instanceof CacheError && e.code === "Mismatch" && e.message.includes("destroyed"),
    );
    using cache = SharedCache.open("back", { ...G, dir: scope.dir, onMismatch: "replace" });
    cache.set("a", 1);
    assert.equal(cache.get("a"), 1);
  } finally {
    void scope.cleanup();
  }
});
