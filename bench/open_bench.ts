/**
 * The cost of opening a cache (open + close of one handle) while this
 * process already holds 1, 100 or 255 other handles of it (issue 10: an
 * open used to try liveness slots one by one from a PID-derived start, and
 * each attempt walks the file's lock list in the kernel, so an open near
 * 4,000 handles cost about 130 ms). With the per-process slot hint an open
 * makes one lock attempt however many handles the process holds, so the
 * three figures should be close. Same run, same file, under both runtimes:
 *
 * ```sh
 * bun run bench/open_bench.ts
 * deno run -A bench/open_bench.ts
 * ```
 *
 * @module
 */

import { measure } from "mitata";
import { rmSync } from "node:fs";
import { SharedCache } from "../mod.ts";
import { freshDir } from "./_common.ts";

const dir = freshDir();
const options = { capacity: 1_000, maxKeyBytes: 64, maxValueBytes: 256, dir };
const held: SharedCache[] = [];

try {
  for (const others of [1, 100, 255]) {
    while (held.length < others) held.push(SharedCache.open("open-bench", options));
    // mitata's measure, one count at a time (a group would run after the
    // loop, with every handle held).
    const stats = await measure(() => SharedCache.open("open-bench", options).close());
    console.log(
      `open + close with ${String(others).padStart(3)} other handles held: ` +
        `p50 ${(stats.p50 / 1000).toFixed(1)} us, avg ${(stats.avg / 1000).toFixed(1)} us`,
    );
  }
} finally {
  for (const h of held) h.close();
  rmSync(dir, { recursive: true, force: true });
}
