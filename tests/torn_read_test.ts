/**
 * The seqlock where it matters: readers in Deno and in Bun read values that
 * check themselves (tests/fixtures/torn.ts) while writers in Deno and in Bun
 * overwrite them, and while one writer is SIGKILLed mid-run. A reader that
 * accepted a copy torn by a concurrent write, or a value a dead writer left
 * half-made, reports a failed check. Every wait is bounded by lines the
 * children print, never by time.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { SharedCache } from "../mod.ts";
import { test } from "./_harness.ts";
import { Child, root, type Runtime, Scope } from "./_proc.ts";

const script = join(root, "tests/fixtures/torn.ts");

interface ReaderResult {
  reads: number;
  hits: number;
  bad: number;
  writers: string[];
  runtime: Runtime;
}

/** Waits until `child` has printed `count` more progress lines starting with `prefix`. */
async function progress(child: Child, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await child.line(prefix, 60_000);
}

test(
  "readers of both runtimes never see a torn value while writers of both runtimes write and one is killed",
  async () => {
    const scope = new Scope();
    try {
      const name = "torn";
      const spawn = (runtime: Runtime, ...args: string[]) => {
        const child = new Child(runtime, [args[0], scope.dir, name, ...args.slice(1)], {}, script);
        scope.children.push(child); // killed by cleanup
        return child;
      };
      // Open (and create) the cache first, so that the children all attach.
      using cache = SharedCache.open(name, {
        capacity: 64,
        maxKeyBytes: 16,
        maxValueBytes: 4096,
        dir: scope.dir,
      });
      const readers = [spawn("deno", "reader"), spawn("bun", "reader")];
      const denoWriter = spawn("deno", "writer", "D");
      const doomed = spawn("bun", "writer", "B");
      for (const c of [...readers, denoWriter, doomed]) await c.line("ready", 60_000);

      // Phase 1: both runtimes write while both read.
      await progress(doomed, "wrote", 5);
      await progress(denoWriter, "wrote", 5);
      for (const r of readers) await progress(r, "read", 20);

      // Phase 2: the Bun writer dies wherever it is (most of its time is
      // spent inside set, holding the lock); another Bun writer takes over.
      doomed.kill("SIGKILL");
      await doomed.wait();
      const bunWriter = spawn("bun", "writer", "b");
      await bunWriter.line("ready", 60_000);
      await progress(bunWriter, "wrote", 5);
      await progress(denoWriter, "wrote", 5);
      for (const r of readers) await progress(r, "read", 20);

      cache.set("stop", true);
      const results: ReaderResult[] = [];
      for (const r of readers) {
        results.push(await r.json<ReaderResult>("result", 60_000));
        assert.equal(r.lines.filter((l) => l.startsWith("bad")).length, 0, r.lines.join("\n"));
      }
      for (const w of [denoWriter, bunWriter]) await w.json("result", 60_000);
      for (const r of results) {
        assert.equal(r.bad, 0, `${r.runtime} reader: ${r.bad} values failed their check`);
        assert.ok(r.hits > 20_000, `${r.runtime} reader: only ${r.hits} hits`);
        // Values from every writer were read, the killed one's included.
        assert.deepEqual(
          [...r.writers].sort(),
          ["B", "D", "b"],
          `${r.runtime} reader saw ${r.writers}`,
        );
      }
      assert.ok(cache.verify().ok, cache.verify().problems.join("; "));
    } finally {
      await scope.cleanup();
    }
  },
  { timeoutMs: 240_000 },
);
