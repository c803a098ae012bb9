/**
 * A Worker terminated while it holds the writer lock: its thread's exit
 * closes its handles (zig/src/threads.zig), so the lock is released and the
 * rest of the process keeps writing.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SharedCache } from "../mod.ts";
import { test } from "./_harness.ts";

test("a Worker terminated inside cache.lock() does not leave the lock held", async () => {
  const dir = mkdtempSync(join(tmpdir(), "shmc-worker-"));
  const worker = new Worker(new URL("./fixtures/worker_lock.ts", import.meta.url), {
    type: "module",
  });
  try {
    using cache = SharedCache.open("w", {
      capacity: 64,
      maxKeyBytes: 64,
      maxValueBytes: 256,
      dir,
      lockTimeoutMs: 50,
    });
    const locked = new Promise((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(e);
    });
    worker.postMessage({ dir, name: "w" });
    assert.equal(
      await Promise.race([locked, new Promise((r) => setTimeout(() => r("timeout"), 20_000))]),
      "locked",
    );
    // The worker holds the lock: a write from this thread is dropped within the bound.
    cache.set("while-held", 1);
    assert.equal(cache.stats().droppedWrites, 1);
    assert.equal(cache.get("from-worker"), 1);
    worker.terminate();
    // The worker's thread exits asynchronously; its exit releases the lock.
    const deadline = Date.now() + 10_000;
    while (cache.stats().lockOwnerPid !== 0) {
      assert.ok(Date.now() < deadline, "the terminated worker's lock was never released");
      await new Promise((r) => setTimeout(r, 5));
    }
    cache.set("after", 2);
    assert.equal(cache.get("after"), 2);
    assert.equal(cache.stats().droppedWrites, 1);
    assert.ok(cache.verify().ok);
  } finally {
    worker.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
});
