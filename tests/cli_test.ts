/**
 * The `shm-cache` CLI (lib/cli.ts) run as a real program under both
 * runtimes, against caches that real Deno and Bun processes hold open; and
 * attaching to a cache without its geometry.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CacheError, inspectCache, SharedCache } from "../mod.ts";
import { main } from "../lib/cli.ts";
import { test } from "./_harness.ts";
import { faultsUnavailable } from "./_hooks.ts";
import { root, type Runtime, Scope } from "./_proc.ts";

const OPTIONS = { capacity: 1000, maxKeyBytes: 64, maxValueBytes: 256 };
const CLI = join(root, "lib/cli.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as its README says, under `runtime`; bounded. */
function cli(runtime: Runtime, args: string[]): Run {
  const bin = join(root, "node_modules/.bin", runtime);
  const argv = runtime === "deno"
    ? ["run", "--allow-ffi", "--allow-read", "--allow-env", CLI, ...args]
    : [CLI, ...args];
  const r = spawnSync(bin, argv, { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function json<T>(r: Run): T {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** A process's state letter from /proc ("T" = stopped), or "gone". */
function procState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1][0];
  } catch {
    return "gone";
  }
}

function isCacheError(code: string) {
  return (e: unknown) => e instanceof CacheError && e.code === code;
}

test("open(name) attaches with the cache's geometry and TTL; a given value must match", async () => {
  const scope = new Scope();
  try {
    const dir = scope.dir;
    assert.throws(
      () => SharedCache.open("attach", { dir }),
      (e: unknown) =>
        isCacheError("NotFound")(e) &&
        /cache attach does not exist in .*; pass capacity, maxKeyBytes and maxValueBytes/.test(
          (e as Error).message,
        ),
    );
    // Part of the geometry does not create either.
    assert.throws(
      () => SharedCache.open("attach", { dir, capacity: 10, maxKeyBytes: 8 }),
      isCacheError("NotFound"),
    );
    assert.equal(existsSync(join(dir, "attach.shmc")), false);
    using creator = SharedCache.open("attach", { ...OPTIONS, maxKeyBytes: 8, dir, ttlMs: 60_000 });
    creator.set("k", "v");
    using attached = SharedCache.open("attach", { dir });
    assert.equal(attached.get("k"), "v");
    assert.equal(attached.stats().capacity, 1000);
    // The attached handle enforces the cache's limits, not defaults.
    assert.throws(() => attached.set("123456789", 1), /more than maxKeyBytes 8/);
    attached.set("12345678", "x".repeat(256));
    assert.throws(() => attached.set("k", "x".repeat(300)), /more than maxValueBytes 256/);
    // Any subset of values that agree attaches too, TTL included.
    SharedCache.open("attach", { dir, capacity: 1000, ttlMs: 60_000 }).close();
    SharedCache.open("attach", { ...OPTIONS, maxKeyBytes: 8, dir }).close();
    for (
      const [patch, message] of [
        [{ capacity: 999 }, /capacity 1000, but 999 was requested/],
        [{ maxKeyBytes: 9 }, /maxKeyBytes 8, but 9 was requested/],
        [{ maxValueBytes: 255 }, /maxValueBytes 256, but 255 was requested/],
        [{ ttlMs: 1 }, /ttlMs 60000, but 1 was requested/],
      ] as const
    ) {
      assert.throws(
        () => SharedCache.open("attach", { dir, ...patch }),
        (e: unknown) => isCacheError("Mismatch")(e) && message.test((e as Error).message),
      );
    }
    // A bad value is still refused before the file is looked at.
    assert.throws(() => SharedCache.open("attach", { dir, capacity: 0 }), RangeError);
  } finally {
    await scope.cleanup();
  }
});

test("stats: hits and misses of a Deno and a Bun process summed, closed and dead handles included", async () => {
  const scope = new Scope();
  try {
    const deno = scope.spawn("deno", ["count", scope.dir, "summed", "7", "3"]);
    const bun = scope.spawn("bun", ["count", scope.dir, "summed", "5", "2"]);
    const own = [
      await deno.json<{ hits: number; misses: number }>("counted"),
      await bun.json<{ hits: number; misses: number }>("counted"),
    ];
    // Each process's own stats() are its handle's alone.
    assert.deepEqual(own.map((s) => [s.hits, s.misses]), [[7, 3], [5, 2]]);
    for (const runtime of ["bun", "deno"] as const) {
      const s = json<{ hits: number; misses: number; handles: number; handlePids: number[] }>(
        cli(runtime, ["stats", "summed", "--dir", scope.dir, "--json"]),
      );
      assert.equal(s.hits, 12, runtime);
      assert.equal(s.misses, 5, runtime);
      // The CLI itself is not a handle.
      assert.equal(s.handles, 2, runtime);
      assert.deepEqual(s.handlePids.sort(), [deno.pid, bun.pid].sort(), runtime);
    }
    // A handle of this process counts in, and its close keeps its counts.
    const here = SharedCache.open("summed", { dir: scope.dir });
    here.get("present");
    assert.deepEqual([here.stats().hits, here.stats({ allHandles: true }).hits], [1, 13]);
    here.close();
    // A killed process's counts stay too.
    bun.kill("SIGKILL");
    await bun.wait();
    const after = json<{ hits: number; misses: number; handles: number }>(
      cli("deno", ["stats", "summed", "--dir", scope.dir, "--json"]),
    );
    assert.deepEqual([after.hits, after.misses, after.handles], [13, 5, 1]);
    // A new handle that takes over a dead one's slot adds to its line.
    const next = SharedCache.open("summed", { dir: scope.dir });
    assert.equal(next.stats().hits, 0);
    next.get("present");
    assert.equal(inspectCache("summed", { dir: scope.dir }).stats.hits, 14);
    next.close();
    const text = cli("bun", ["stats", "summed", "--dir", scope.dir]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^hits +14$/m);
    assert.match(text.stdout, /^handles +1 \(pids \d+\)$/m);
  } finally {
    await scope.cleanup();
  }
});

test("every per-handle counter is summed: unstoredResults, droppedWrites, lockTimeouts, memoHits", async () => {
  const scope = new Scope();
  try {
    const dir = scope.dir;
    using a = SharedCache.open("every", { ...OPTIONS, dir, lockTimeoutMs: 20 });
    using b = SharedCache.open("every", { dir, lockTimeoutMs: 20 });
    // a: one result too large to store.
    assert.equal(a.getOrSet("big", () => "z".repeat(300)), "z".repeat(300));
    // b: another process holds the lock, so b's set is dropped and its
    // lock() times out.
    const holder = scope.spawn("bun", ["hold-lock", dir, "every"]);
    await holder.line("locked");
    b.set("k", 1);
    assert.throws(() => b.lock(), isCacheError("LockTimeout"));
    holder.kill("SIGKILL");
    await holder.wait();
    // b: a memo hit.
    b.set("s", "text");
    b.get("s");
    b.get("s");
    const own = [a.stats(), b.stats()];
    assert.deepEqual(own.map((s) => s.unstoredResults), [1, 0]);
    assert.deepEqual(own.map((s) => s.droppedWrites), [0, 1]);
    assert.deepEqual(own.map((s) => s.lockTimeouts), [0, 2]);
    assert.deepEqual(own.map((s) => s.memoHits), [0, 1]);
    const all = inspectCache("every", { dir }).stats;
    assert.deepEqual(
      [all.unstoredResults, all.droppedWrites, all.lockTimeouts, all.memoHits],
      [1, 1, 2, 1],
    );
    assert.deepEqual(a.stats({ allHandles: true }), all);
  } finally {
    await scope.cleanup();
  }
});

test("stats --prometheus: each family once with HELP and TYPE, a cache label per sample", async () => {
  const scope = new Scope();
  try {
    const child = scope.spawn("deno", ["count", scope.dir, "prom-a", "4", "1"]);
    await child.line("counted");
    SharedCache.open("prom-b", { ...OPTIONS, dir: scope.dir }).close();
    const r = cli("bun", ["stats", "prom-a", "prom-b", "--dir", scope.dir, "--prometheus"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    const helps = lines.filter((l) => l.startsWith("# HELP "));
    const types = lines.filter((l) => l.startsWith("# TYPE "));
    assert.equal(helps.length, types.length);
    assert.equal(new Set(types).size, types.length, "a family appears once");
    for (const t of types) {
      const [, , name, kind] = t.split(" ");
      assert.ok(kind === "counter" || kind === "gauge", t);
      assert.equal(name.endsWith("_total"), kind === "counter", t);
      const samples = lines.filter((l) => l.startsWith(`${name}{`));
      assert.deepEqual(samples.map((l) => l.match(/\{cache="([^"]+)"\}/)?.[1]), [
        "prom-a",
        "prom-b",
      ]);
      for (const s of samples) assert.match(s, /^\w+\{cache="[^"]+"\} \d+$/);
    }
    assert.ok(lines.includes('shm_cache_hits_total{cache="prom-a"} 4'));
    assert.ok(lines.includes('shm_cache_misses_total{cache="prom-a"} 1'));
    assert.ok(lines.includes('shm_cache_handles{cache="prom-a"} 1'));
    assert.ok(lines.includes('shm_cache_hits_total{cache="prom-b"} 0'));
    assert.ok(lines.includes("# TYPE shm_cache_entries gauge"));
  } finally {
    await scope.cleanup();
  }
});

test("ls: every cache with its handles and the PID of a held lock's owner", async () => {
  const scope = new Scope();
  try {
    const holder = scope.spawn("bun", ["hold-lock", scope.dir, "locked-one"]);
    await holder.line("locked");
    using idle = SharedCache.open("idle-one", { ...OPTIONS, capacity: 10, dir: scope.dir });
    idle.set("a", 1);
    interface Row {
      name: string;
      handles: number;
      lockOwnerPid: number;
      lockOwnerAlive: boolean;
      size: number;
      capacity: number;
      maxKeyBytes: number;
      fileBytes: number;
    }
    for (const runtime of ["deno", "bun"] as const) {
      const rows = json<Row[]>(cli(runtime, ["ls", "--dir", scope.dir, "--json"]));
      assert.deepEqual(rows.map((r) => r.name), ["idle-one", "locked-one"], runtime);
      const [idleRow, lockedRow] = rows;
      assert.deepEqual(
        [
          idleRow.handles,
          idleRow.lockOwnerPid,
          idleRow.size,
          idleRow.capacity,
          idleRow.maxKeyBytes,
        ],
        [1, 0, 1, 10, 64],
      );
      assert.deepEqual(
        [lockedRow.handles, lockedRow.lockOwnerPid, lockedRow.lockOwnerAlive],
        [1, holder.pid, true],
      );
      assert.ok(idleRow.fileBytes > 0);
    }
    const table = cli("deno", ["ls", "--dir", scope.dir]);
    assert.equal(table.code, 0, table.stderr);
    const [header, ...rows] = table.stdout.trimEnd().split("\n");
    assert.match(header, /^NAME +FILE +ENTRIES +CAPACITY +KEY +VALUE +TTL +HANDLES +LOCK$/);
    assert.match(rows[1], new RegExp(`^locked-one .* 1 +pid ${holder.pid}$`));
    assert.match(rows[0], /^idle-one .* 1 +-$/);
    // The owner dies: ls says so (the lock is recovered by the next writer).
    holder.kill("SIGKILL");
    await holder.wait();
    const dead = json<Row[]>(cli("bun", ["ls", "--dir", scope.dir, "--json"]))[1];
    assert.deepEqual([dead.handles, dead.lockOwnerPid, dead.lockOwnerAlive], [
      0,
      holder.pid,
      false,
    ]);
    assert.match(cli("bun", ["ls", "--dir", scope.dir]).stdout, /pid \d+ \(dead\)/);
    // A file that is not a cache is listed with the reason, and the rest still are.
    writeFileSync(join(scope.dir, "junk.shmc"), "x".repeat(8192), { mode: 0o600 });
    const withJunk = json<Array<Row & { error?: { code: string } }>>(
      cli("deno", ["ls", "--dir", scope.dir, "--json"]),
    );
    assert.deepEqual(withJunk.map((r) => [r.name, r.error?.code]), [
      ["idle-one", undefined],
      ["junk", "Corrupt"],
      ["locked-one", undefined],
    ]);
    const junkTable = cli("bun", ["ls", "--dir", scope.dir]);
    assert.equal(junkTable.code, 0);
    assert.match(junkTable.stdout, /^junk +\? +\?/m);
    assert.match(junkTable.stdout, /^junk: Corrupt: .*bad magic/m);
    // The default directory (under /dev/shm) needs no permission beyond the README's.
    assert.equal(cli("deno", ["ls", "--json"]).code, 0);
  } finally {
    await scope.cleanup();
  }
});

test(
  "ls and stats neither wait on a writer stuck mid-mutation nor change a byte, nor recover",
  async () => {
    const scope = new Scope();
    try {
      const dir = scope.dir;
      const seed = SharedCache.open("stuck", { ...OPTIONS, dir });
      seed.set("k", "old");
      seed.close();
      // Fault step 9 | 0x100: the writer stops itself (SIGSTOP) inside an
      // overwrite, lock held, seqlock odd. Stopped, it writes no byte more:
      // seq turns odd before step 9, so waiting for writerActive alone let
      // the writer's own stores change the digest below under load.
      const writer = scope.spawn("deno", [
        "park",
        dir,
        "stuck",
        String(0x100 | 9),
        "set",
        "k",
        "new",
      ]);
      await writer.line("parking");
      const deadline = Date.now() + 10_000;
      while (procState(writer.pid) !== "T") {
        assert.ok(Date.now() < deadline, "the writer did not stop at its fault step");
        await new Promise((r) => setTimeout(r, 5));
      }
      const file = join(dir, "stuck.shmc");
      const digest = () => createHash("sha256").update(readFileSync(file)).digest("hex");
      const before = digest();
      interface Info {
        writerActive: boolean;
        lockOwnerPid: number;
        lockOwnerAlive: boolean;
        handles: number;
        recoveries: number;
      }
      const live = json<Info>(cli("bun", ["stats", "stuck", "--dir", dir, "--json"]));
      assert.deepEqual(
        [live.writerActive, live.lockOwnerPid, live.lockOwnerAlive, live.handles],
        [true, writer.pid, true, 1],
      );
      assert.equal(cli("deno", ["ls", "--dir", dir]).code, 0);
      assert.equal(digest(), before, "an inspector wrote to the region");
      // The owner dies: the inspectors report it and leave the recovery to a handle.
      writer.kill("SIGKILL");
      await writer.wait();
      const dead = json<Info>(cli("deno", ["stats", "stuck", "--dir", dir, "--json"]));
      assert.deepEqual(
        [dead.writerActive, dead.lockOwnerPid, dead.lockOwnerAlive, dead.handles, dead.recoveries],
        [true, writer.pid, false, 0, 0],
      );
      assert.equal(digest(), before, "an inspector recovered or wrote");
      // A real handle recovers (get waits for the dead writer's odd sequence).
      using cache = SharedCache.open("stuck", { dir });
      assert.equal(cache.get("k"), undefined);
      const after = inspectCache("stuck", { dir });
      assert.deepEqual([after.writerActive, after.lockOwnerPid, after.stats.recoveries], [
        false,
        0,
        1,
      ]);
    } finally {
      await scope.cleanup();
    }
  },
  { skip: faultsUnavailable },
);

test("get, verify, clear, destroy: output and exit codes", async () => {
  const scope = new Scope();
  try {
    const dir = scope.dir;
    const cache = SharedCache.open("ops", { ...OPTIONS, dir });
    cache.set("text", "hello");
    cache.set("obj", { a: [1, 2] });
    cache.set(new Uint8Array([0xca, 0xfe]), "bytes-key");
    const get = (...args: string[]) => cli("bun", ["get", "ops", ...args, "--dir", dir]);
    assert.deepEqual([get("text").code, get("text").stdout], [0, "hello\n"]);
    assert.equal(get("obj").stdout, '{"a":[1,2]}\n');
    assert.equal(get("text", "--json").stdout, '"hello"\n');
    assert.equal(get("cafe", "--hex").stdout, "bytes-key\n");
    const miss = get("nope");
    assert.equal(miss.code, 1);
    assert.match(miss.stderr, /no entry under "nope"/);
    assert.equal(get("xyz", "--hex").code, 2);

    const ok = cli("deno", ["verify", "ops", "--dir", dir, "--json"]);
    assert.deepEqual(json(ok), { ok: true, problems: [], repaired: false });
    assert.equal(cli("deno", ["verify", "ops", "--dir", dir]).stdout, "ok\n");

    const cleared = cli("deno", ["clear", "ops", "--dir", dir]);
    assert.deepEqual([cleared.code, cleared.stdout], [0, "cleared 3 entries from ops\n"]);
    assert.equal(cache.size, 0);

    const destroyed = cli("bun", ["destroy", "ops", "--dir", dir]);
    assert.equal(destroyed.code, 0, destroyed.stderr);
    assert.match(destroyed.stdout, /destroyed ops \(1 open handle/);
    assert.equal(existsSync(join(dir, "ops.shmc")), false);
    cache.close();
    // No such cache: every command that needs one fails with 1, naming it.
    for (const command of ["stats", "get", "verify", "clear", "destroy"]) {
      const args = command === "get" ? [command, "ops", "k"] : [command, "ops"];
      const r = cli("bun", [...args, "--dir", dir]);
      assert.equal(r.code, 1, `${command}: ${r.stderr}`);
      assert.match(r.stderr, /NotFound: .*ops/, command);
      // Attaching did not create it.
      assert.equal(existsSync(join(dir, "ops.shmc")), false, command);
    }
    assert.deepEqual(json(cli("deno", ["ls", "--dir", dir, "--json"])), []);
  } finally {
    await scope.cleanup();
  }
}, { timeoutMs: 180_000 });

test("--help on every command, and bad usage exits 2", () => {
  const commands = ["ls", "stats", "get", "verify", "clear", "destroy"];
  const top = cli("deno", ["--help"]);
  assert.equal(top.code, 0);
  for (const c of commands) assert.match(top.stdout, new RegExp(`^  ${c} `, "m"));
  for (const c of commands) {
    for (const runtime of ["bun", "deno"] as const) {
      const r = cli(runtime, [c, "--help"]);
      assert.equal(r.code, 0, `${c} --help under ${runtime}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: shm-cache ${c}`));
      assert.match(r.stdout, /--dir DIR/);
    }
  }
  // Bad usage as real programs, under both runtimes.
  for (const runtime of ["bun", "deno"] as const) {
    for (const args of [[], ["frobnicate"], ["ls", "--bogus"], ["stats"]]) {
      const r = cli(runtime, args);
      assert.equal(r.code, 2, `${runtime} ${JSON.stringify(args)}: ${r.stderr}`);
      assert.ok(r.stderr.length > 0);
      assert.equal(r.stdout, "");
    }
  }
}, { timeoutMs: 180_000 });

test("main(): every kind of bad usage is exit 2 with the reason on stderr, nothing on stdout", () => {
  const bad: string[][] = [
    [],
    ["frobnicate"],
    ["help", "frobnicate"],
    ["ls", "--bogus"],
    ["ls", "extra"],
    ["stats"],
    ["stats", "x", "--json", "--prometheus"],
    ["get", "only-name"],
    ["get", "n", "k", "--hex"],
    ["verify", "a", "b"],
    ["verify", "a", "--repair=yes"],
    ["clear", "../escape"],
    ["destroy", "--dir"],
    ["destroy", "x", "--dir", ""],
  ];
  for (const args of bad) {
    const out: string[] = [];
    const err: string[] = [];
    const code = main(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
    assert.equal(code, 2, `${JSON.stringify(args)}: ${err.join("\n")}`);
    assert.ok(err.join("").length > 0, JSON.stringify(args));
    if (args[0] !== "help") assert.deepEqual(out, [], JSON.stringify(args));
  }
  const out: string[] = [];
  assert.equal(main(["help", "stats"], { out: (t) => out.push(t), err: () => {} }), 0);
  assert.match(out.join("\n"), /^usage: shm-cache stats NAME\.\.\. \[options\]/);
});

/** main() in process, its output collected. */
function run(args: string[]): { code: number; out: string; err: string } {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

test("a FIFO or a directory named like a cache is refused at once as not a regular file", async () => {
  const scope = new Scope();
  try {
    const dir = scope.dir;
    const made = spawnSync("mkfifo", ["-m", "600", join(dir, "fifo.shmc")], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
    mkdirSync(join(dir, "folder.shmc"), { mode: 0o700 });
    const notRegular = (name: string) => (e: unknown) =>
      isCacheError("Corrupt")(e) &&
      new RegExp(`${name}\\.shmc is not a regular file`).test((e as Error).message);
    // First as a bounded child: a read-only open of a FIFO waits for a
    // writer, so an inspector that blocked on it would hang this process.
    for (const command of ["stats", "destroy"]) {
      const r = spawnSync(
        join(root, "node_modules/.bin/bun"),
        [CLI, command, "fifo", "--dir", dir],
        {
          encoding: "utf8",
          timeout: 20_000,
        },
      );
      assert.equal(r.status, 1, `${command}: exit ${r.status} (${r.signal}): ${r.stderr}`);
      assert.match(r.stderr, /Corrupt: .*fifo\.shmc is not a regular file/, command);
    }
    for (const name of ["fifo", "folder"]) {
      assert.throws(() => inspectCache(name, { dir }), notRegular(name), name);
    }
    // Attach, create and destroy refuse the FIFO too, and leave it there.
    assert.throws(() => SharedCache.open("fifo", { dir }), notRegular("fifo"));
    assert.throws(() => SharedCache.open("fifo", { ...OPTIONS, dir }), notRegular("fifo"));
    assert.throws(() => SharedCache.destroy("fifo", { dir }), notRegular("fifo"));
    assert.ok(existsSync(join(dir, "fifo.shmc")));
    // ls skips both (not files of caches).
    assert.deepEqual(JSON.parse(run(["ls", "--dir", dir, "--json"]).out), []);
  } finally {
    await scope.cleanup();
  }
});

test("stats names each cache once however often it is given; ls --dir of a missing directory fails", async () => {
  const scope = new Scope();
  try {
    const dir = scope.dir;
    SharedCache.open("twice", { ...OPTIONS, dir }).close();
    const prom = run(["stats", "twice", "twice", "--dir", dir, "--prometheus"]);
    assert.equal(prom.code, 0, prom.err);
    const samples = prom.out.split("\n").filter((l) => !l.startsWith("#"));
    assert.equal(new Set(samples.map((l) => l.split(" ")[0])).size, samples.length, prom.out);
    assert.equal(
      JSON.parse(run(["stats", "twice", "twice", "--dir", dir, "--json"]).out).name,
      "twice",
    );
    // An explicit directory that does not exist is a failure, not "no caches".
    const missing = run(["ls", "--dir", join(dir, "typo")]);
    assert.equal(missing.code, 1, missing.err);
    assert.match(missing.err, /NotFound: directory .*typo does not exist/);
    assert.equal(run(["ls", "--dir", join(dir, "typo"), "--json"]).code, 1);
  } finally {
    await scope.cleanup();
  }
});

test("get prints what JSON cannot say (a structured cache's Map, NaN, bigint) without losing it", async () => {
  const scope = new Scope();
  try {
    const dir = scope.dir;
    using cache = SharedCache.open("shapes", { ...OPTIONS, dir, codec: "structured" });
    cache.set("map", new Map([["a", 1]]));
    cache.set("nan", NaN);
    cache.set("big", 12345678901234567890n);
    cache.set("plain", { a: [1, 2] });
    const map = run(["get", "shapes", "map", "--dir", dir]);
    assert.equal(map.code, 0, map.err);
    assert.match(map.out, /Map\(1\) \{ .a. => 1 \}/);
    assert.equal(run(["get", "shapes", "nan", "--dir", dir]).out, "NaN");
    assert.equal(run(["get", "shapes", "big", "--dir", dir]).out, "12345678901234567890n");
    assert.equal(run(["get", "shapes", "plain", "--dir", dir]).out, '{"a":[1,2]}');
    // --json refuses a value that JSON would change, instead of printing {}.
    const json = run(["get", "shapes", "map", "--dir", dir, "--json"]);
    assert.equal(json.code, 1);
    assert.equal(json.out, "");
    assert.match(json.err, /not JSON data/);
    assert.equal(run(["get", "shapes", "plain", "--dir", dir, "--json"]).out, '{"a":[1,2]}');
  } finally {
    await scope.cleanup();
  }
});

test("a cache file not yet sized by its creator is NotFound to inspectors and left out of ls, not Corrupt", async () => {
  const scope = new Scope();
  try {
    const dir = scope.dir;
    // What an inspector sees between a creator's O_CREAT and its taking
    // the creation lock (or after a creator died right there).
    writeFileSync(join(dir, "young.shmc"), "", { mode: 0o600 });
    SharedCache.open("grown", { ...OPTIONS, dir }).close();
    assert.throws(
      () => inspectCache("young", { dir }),
      (e: unknown) => isCacheError("NotFound")(e) && /being created/.test((e as Error).message),
    );
    const ls = run(["ls", "--dir", dir, "--json"]);
    assert.equal(ls.code, 0, ls.err);
    assert.deepEqual(JSON.parse(ls.out).map((r: { name: string }) => r.name), ["grown"]);
    const stats = run(["stats", "young", "--dir", dir]);
    assert.equal(stats.code, 1);
    assert.match(stats.err, /NotFound: .*being created/);
    // destroy still removes one that a dead creator left behind.
    writeFileSync(join(dir, "left.shmc"), "", { mode: 0o600 });
    const destroyed = run(["destroy", "left", "--dir", dir]);
    assert.equal(destroyed.code, 0, destroyed.err);
    assert.equal(existsSync(join(dir, "left.shmc")), false);
    // A creator with the geometry still builds it.
    using _cache = SharedCache.open("young", { ...OPTIONS, dir });
    assert.equal(inspectCache("young", { dir }).handles, 1);
  } finally {
    await scope.cleanup();
  }
});
