/**
 * No SIGBUS on a file system without fallocate. ext2 has none, so before
 * write-through a region there stayed a sparse file: once the file system
 * filled up, the first store into a page with no block killed the process
 * with SIGBUS. Reproduced on a 4 MiB ext2 image mounted through a loop
 * device, which needs root; the test reports itself skipped, with the
 * reason, where that cannot run, and removes its mount in every case.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { CacheError, SharedCache } from "../mod.ts";
import { test } from "./_harness.ts";
import { Child, root, type Runtime } from "./_proc.ts";

const IMAGE_BYTES = 4 << 20;
const runtime: Runtime = (globalThis as { Deno?: unknown }).Deno ? "deno" : "bun";

function run(cmd: string, args: string[]): { ok: boolean; why: string } {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  if (r.status === 0) return { ok: true, why: "" };
  return {
    ok: false,
    why: `${cmd} ${args.join(" ")}: ${r.error?.message ?? r.stderr.trim() ?? `exit ${r.status}`}`,
  };
}

/** An ext2 file system of IMAGE_BYTES mounted at `<base>/mnt`; unmount() always cleans up. */
class Ext2 {
  readonly base = mkdtempSync(join(tmpdir(), "shmc-ext2-"));
  readonly mnt = join(this.base, "mnt");
  mounted = false;

  mount(): string | undefined {
    const image = join(this.base, "image");
    writeFileSync(image, new Uint8Array(IMAGE_BYTES));
    mkdirSync(this.mnt);
    const mkfs = run("mkfs.ext2", ["-q", "-F", image]);
    if (!mkfs.ok) return mkfs.why;
    const mount = run("mount", ["-o", "loop", image, this.mnt]);
    if (!mount.ok) return mount.why;
    this.mounted = true;
    return undefined;
  }

  unmount(): void {
    if (this.mounted && !run("umount", [this.mnt]).ok) run("umount", ["-l", this.mnt]);
    this.mounted = false;
    rmSync(this.base, { recursive: true, force: true });
  }
}

/** Why the test cannot run here, or undefined: it tries a mount once. */
function ext2Unavailable(): string | undefined {
  if (process.platform !== "linux") return "loop mounts are Linux only";
  if (process.getuid?.() !== 0) return "mounting a loop device needs root";
  if (!existsSync("/dev/loop-control")) return "no /dev/loop-control (no loop devices)";
  for (const tool of ["mkfs.ext2", "mount", "umount"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
      return `${tool} is not installed`;
    }
  }
  const probe = new Ext2();
  try {
    const why = probe.mount();
    return why === undefined ? undefined : `cannot mount an ext2 image: ${why}`;
  } catch (e) {
    return `cannot mount an ext2 image: ${(e as Error).message}`;
  } finally {
    probe.unmount();
  }
}

test(
  "a full ext2 file system (no fallocate): sets fill the region without SIGBUS, and a new cache is NoSpace",
  async () => {
    const fs = new Ext2();
    let child: Child | undefined;
    try {
      const why = fs.mount();
      assert.equal(why, undefined, why ?? "");
      const dir = join(fs.mnt, "caches");
      mkdirSync(dir, { mode: 0o700 });
      const go = join(fs.base, "go");
      child = new Child(runtime, [dir, go], {}, join(root, "tests/fixtures/fill_child.ts"));
      await child.line("ready");
      // Fill the file system: dd stops at ENOSPC (and says so).
      const dd = spawnSync("dd", ["if=/dev/zero", `of=${join(dir, "filler")}`, "bs=64k"], {
        stdio: "ignore",
      });
      assert.notEqual(dd.status, 0, "dd should have run out of space");
      writeFileSync(go, "");
      const done = await child.line("ok");
      assert.equal(done, "ok 400");
      const exit = await child.wait();
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.throws(
        () =>
          SharedCache.open("second", { capacity: 400, maxKeyBytes: 16, maxValueBytes: 4000, dir }),
        (e) => e instanceof CacheError && e.code === "NoSpace" && e.message.includes(dir),
      );
    } finally {
      child?.kill("SIGKILL");
      if (child !== undefined) await child.wait().catch(() => {});
      fs.unmount();
    }
  },
  { skip: ext2Unavailable(), timeoutMs: 60_000 },
);
