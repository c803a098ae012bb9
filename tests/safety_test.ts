/**
 * Bad input of every kind gets a clear error and the process stays alive:
 * options, names, keys, values, directories and the shared file itself.
 */

import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { CacheError, SharedCache } from "../mod.ts";
import { test } from "./_harness.ts";

const BASE = { capacity: 16, maxKeyBytes: 32, maxValueBytes: 64 };

function scratch(): string {
  return mkdtempSync(join(tmpdir(), "shmc-safety-"));
}

function isCacheError(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof CacheError && e.code === code;
}

test("files are 0600 in a 0700 directory that open creates", () => {
  const parent = scratch();
  try {
    const dir = join(parent, "cache-dir");
    const cache = SharedCache.open("perm", { ...BASE, dir });
    cache.close();
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, "perm.shmc")).mode & 0o777, 0o600);
    SharedCache.destroy("perm", { dir });
    assert.throws(() => statSync(join(dir, "perm.shmc")), /ENOENT/);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test("an unsafe directory is refused: symlink, group/other access", (): void => {
  const parent = scratch();
  try {
    const real = join(parent, "real");
    mkdirSync(real, { mode: 0o700 });
    const link = join(parent, "link");
    symlinkSync(real, link);
    assert.throws(
      () => SharedCache.open("x", { ...BASE, dir: link }),
      (e: unknown) =>
        isCacheError("UnsafeDirectory")(e) && /symbolic link/.test((e as Error).message),
    );

    const open = join(parent, "open");
    mkdirSync(open);
    chmodSync(open, 0o755);
    assert.throws(
      () => SharedCache.open("x", { ...BASE, dir: open }),
      (e: unknown) => isCacheError("UnsafeDirectory")(e) && /mode 755/.test((e as Error).message),
    );

    // A data file that is a symlink is refused too (no following into another place).
    const victim = join(parent, "victim");
    writeFileSync(victim, "keep me");
    symlinkSync(victim, join(real, "x.shmc"));
    assert.throws(
      () => SharedCache.open("x", { ...BASE, dir: real }),
      isCacheError("UnsafeDirectory"),
    );
    assert.equal(readFileSync(victim, "utf8"), "keep me");
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test("a cache directory owned by another user is refused", () => {
  const parent = scratch();
  try {
    const foreign = join(parent, "foreign");
    mkdirSync(foreign, { mode: 0o700 });
    chownSync(foreign, 65534, 65534);
    assert.throws(
      () => SharedCache.open("x", { ...BASE, dir: foreign }),
      (e: unknown) =>
        isCacheError("UnsafeDirectory")(e) && /owned by uid 65534/.test((e as Error).message),
    );
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
}, {
  skip: process.getuid?.() === 0 ? undefined : "needs root to chown a directory to another user",
});

test("bad options name the option and the value", () => {
  const dir = scratch();
  try {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ capacity: 0 }, /capacity must be an integer from 1 to \d+, got 0/],
      [{ capacity: -1 }, /capacity .* got -1/],
      [{ capacity: 1.5 }, /capacity .* got 1.5/],
      [{ capacity: NaN }, /capacity .* got NaN/],
      [{ capacity: "10" }, /capacity .* got string/],
      [{ capacity: 2 ** 40 }, /capacity .* got 1099511627776/],
      [{ maxKeyBytes: 0 }, /maxKeyBytes .* got 0/],
      [{ maxKeyBytes: 70_000 }, /maxKeyBytes .* got 70000/],
      [{ maxValueBytes: -3 }, /maxValueBytes .* got -3/],
      [{ maxValueBytes: Infinity }, /maxValueBytes .* got Infinity/],
      [{ ttlMs: 0 }, /ttlMs .* got 0/],
      [{ lockTimeoutMs: 0 }, /lockTimeoutMs .* got 0/],
    ];
    for (const [patch, message] of cases) {
      assert.throws(
        () => SharedCache.open("opts", { ...BASE, dir, ...patch } as never),
        (e: unknown) => e instanceof RangeError && message.test(e.message),
        JSON.stringify(patch),
      );
    }
    // Overflowing geometry: every field valid, the product too large.
    assert.throws(
      () =>
        SharedCache.open("opts", {
          capacity: 1 << 26,
          maxKeyBytes: 65_535,
          maxValueBytes: (1 << 27) - 1,
          dir,
        }),
      (e: unknown) => e instanceof RangeError && /exceed/.test(e.message),
    );
    for (const name of ["", "../x", "a/b", ".hidden", "a..b", "x".repeat(129), "sp ace"]) {
      assert.throws(
        () => SharedCache.open(name, { ...BASE, dir }),
        (e: unknown) => e instanceof RangeError && /cache name/.test(e.message),
        name,
      );
    }
    assert.throws(() => SharedCache.open("opts", { ...BASE, dir: "" }), TypeError);
    assert.throws(() => SharedCache.open("opts", null as never), TypeError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("oversized keys and values throw RangeError and lose nothing", () => {
  const dir = scratch();
  try {
    using cache = SharedCache.open("sizes", { ...BASE, dir });
    cache.set("k", "original");
    assert.throws(
      () => cache.set("k".repeat(33), 1),
      /key "kkkk.*" is 33 bytes, more than maxKeyBytes 32/,
    );
    assert.throws(() => cache.set("é".repeat(17), 1), /is 34 bytes, more than maxKeyBytes 32/);
    assert.throws(() => cache.get(new Uint8Array(33)), /Uint8Array\(33\) is 33 bytes/);
    assert.throws(
      () => cache.set("k", "v".repeat(65)),
      /value for key "k" is 65 bytes encoded, more than maxValueBytes 64/,
    );
    assert.throws(
      () => cache.set("k", new Uint8Array(65)),
      /65 bytes encoded, more than maxValueBytes 64/,
    );
    assert.throws(() => cache.set("k", { big: "x".repeat(100) }), RangeError);
    assert.throws(() => cache.set("k", () => 1), TypeError);
    assert.throws(() => cache.set("k", Symbol("s")), TypeError);
    assert.throws(
      () => cache.set("k", new Map()),
      /value: Map is not storable; use codec: "structured"/,
    );
    assert.throws(
      () => cache.set(42 as never, 1),
      /key must be a string or a Uint8Array, got number/,
    );
    // Exactly at the limits works.
    cache.set("x".repeat(32), "v".repeat(64));
    assert.equal(cache.get("x".repeat(32)), "v".repeat(64));
    assert.equal(cache.get("k"), "original");
    assert.ok(cache.verify().ok);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("keys crafted to share one hash cost a bounded probe; past it writes are dropped and counted", () => {
  const dir = scratch();
  try {
    using cache = SharedCache.open("collide", {
      capacity: 1024,
      maxKeyBytes: 32,
      maxValueBytes: 8,
      dir,
    });
    // Bytes 8..16 equal a constant that zeroes the key hash's state
    // (Wyhash): every such key of one length has the same hash.
    const key = (n: number) => {
      const k = new Uint8Array(24);
      const view = new DataView(k.buffer);
      view.setUint32(0, n, true);
      view.setBigUint64(8, 0xe7037ed1a0b428dbn, true);
      return k;
    };
    for (let n = 0; n < 400; n++) cache.set(key(n), n);
    const stats = cache.stats();
    assert.equal(stats.size, 256, "the probe bound (zig/src/table.zig probe_max) caps the run");
    assert.equal(stats.droppedWrites, 400 - 256);
    for (let n = 0; n < 400; n++) assert.equal(cache.get(key(n)), n < 256 ? n : undefined);
    // Other keys are unaffected; overwriting a stored colliding key works.
    cache.set("plain", "ok");
    assert.equal(cache.get("plain"), "ok");
    cache.set(key(7), "again");
    assert.equal(cache.get(key(7)), "again");
    assert.ok(cache.verify().ok);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("reopening with other geometry or TTL names the differing field", () => {
  const dir = scratch();
  try {
    const cache = SharedCache.open("geo", { ...BASE, dir, ttlMs: 1000 });
    cache.set("a", 1);
    assert.throws(
      () => SharedCache.open("geo", { ...BASE, capacity: 17, dir, ttlMs: 1000 }),
      (e: unknown) =>
        isCacheError("Mismatch")(e) &&
        /capacity 16, but 17 was requested/.test((e as Error).message),
    );
    assert.throws(
      () => SharedCache.open("geo", { ...BASE, maxValueBytes: 65, dir, ttlMs: 1000 }),
      /maxValueBytes 64, but 65/,
    );
    assert.throws(
      () => SharedCache.open("geo", { ...BASE, dir, ttlMs: 2000 }),
      /ttlMs 1000, but 2000 was requested/,
    );
    // Nothing was touched by the refused opens.
    assert.equal(cache.get("a"), 1);
    cache.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a truncated or foreign data file is refused with Corrupt; destroy starts over", () => {
  const dir = scratch();
  try {
    SharedCache.open("trunc", { ...BASE, dir }).close();
    const file = join(dir, "trunc.shmc");
    truncateSync(file, statSync(file).size / 2);
    assert.throws(
      () => SharedCache.open("trunc", { ...BASE, dir }),
      (e: unknown) =>
        isCacheError("Corrupt")(e) &&
        /file is \d+ bytes, its header says \d+/.test((e as Error).message),
    );
    truncateSync(file, 100);
    assert.throws(() => SharedCache.open("trunc", { ...BASE, dir }), /smaller than a header/);
    // A foreign file of the right name: never overwritten.
    const junk = new Uint8Array(8192).map((_, i) => (i * 7 + 3) & 0xff);
    writeFileSync(file, junk);
    assert.throws(
      () => SharedCache.open("trunc", { ...BASE, dir }),
      (e: unknown) => isCacheError("Corrupt")(e) && /bad magic/.test((e as Error).message),
    );
    assert.deepEqual(new Uint8Array(readFileSync(file)), junk);
    SharedCache.destroy("trunc", { dir });
    using fresh = SharedCache.open("trunc", { ...BASE, dir });
    fresh.set("ok", true);
    assert.equal(fresh.get("ok"), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a region a creator left half-made is rebuilt, not accepted", () => {
  const dir = scratch();
  try {
    const first = SharedCache.open("half", { ...BASE, dir });
    first.set("a", 1);
    first.close();
    // Zero the `initialized` marker (offset 12) as if the creator died before writing it.
    const fd = openSync(join(dir, "half.shmc"), "r+");
    writeSync(fd, new Uint8Array(4), 0, 4, 12);
    closeSync(fd);
    using again = SharedCache.open("half", { ...BASE, dir });
    assert.equal(again.get("a"), undefined, "a rebuilt region starts empty");
    again.set("b", 2);
    assert.equal(again.get("b"), 2);
    assert.ok(again.verify().ok);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("garbage over the table and slots: get and set never crash, verify reports, repair fixes", () => {
  const dir = scratch();
  try {
    using cache = SharedCache.open("garbage", { ...BASE, dir });
    for (let i = 0; i < 16; i++) cache.set(`k${i}`, `value-${i}`);
    const file = join(dir, "garbage.shmc");
    const size = statSync(file).size;
    const fd = openSync(file, "r+");
    let x = 12345;
    const noise = new Uint8Array(size - 4096).map(() =>
      (x = (x * 1103515245 + 12345) >>> 0) >>> 24
    );
    writeSync(fd, noise, 0, noise.length, 4096);
    closeSync(fd);
    for (let i = 0; i < 16; i++) {
      const v = cache.get(`k${i}`);
      assert.ok(v === undefined || v === `value-${i}`, `k${i} gave ${String(v)}`);
    }
    const report = cache.verify();
    assert.equal(report.ok, false);
    assert.ok(report.problems.length > 0);
    for (let i = 0; i < 40; i++) cache.set(`n${i}`, i);
    const repaired = cache.verify({ repair: true });
    assert.equal(repaired.ok, true);
    for (let i = 30; i < 40; i++) assert.equal(cache.get(`n${i}`), i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a region from an earlier boot starts empty; one in use is left alone", () => {
  const dir = scratch();
  try {
    const first = SharedCache.open("boot", { ...BASE, dir, ttlMs: 60_000 });
    first.set("a", 1);
    first.close();
    // Header offset 56: the boot id. Another boot wrote this region.
    const file = join(dir, "boot.shmc");
    const fd = openSync(file, "r+");
    writeSync(fd, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 0, 8, 56);
    closeSync(fd);
    const holder = SharedCache.open("boot", { ...BASE, dir, ttlMs: 60_000 });
    assert.equal(holder.get("a"), undefined, "entries of an earlier boot are dropped");
    holder.set("b", 2);
    // Mark it foreign again while a handle is open: never reset under a live handle.
    const fd2 = openSync(file, "r+");
    writeSync(fd2, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 0, 8, 56);
    closeSync(fd2);
    using again = SharedCache.open("boot", { ...BASE, dir, ttlMs: 60_000 });
    assert.equal(again.get("b"), 2);
    holder.close();
    assert.ok(again.verify().ok);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
