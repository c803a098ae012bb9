/**
 * The demo: four processes (two Deno, two Bun) share one cache and memoize
 * an expensive function through it. Halfway through, one of them takes the
 * writer lock and is SIGKILLed while holding it; the others carry on, and
 * the demo prints who recovered the lock, how long it took, and the hits
 * and misses of each process.
 *
 *   bash scripts/demo.sh
 */

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { SharedCache } from "../mod.ts";
import { demoOptions } from "./_demo_options.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const worker = join(root, "scripts/_demo_worker.ts");
const dir = mkdtempSync(join(tmpdir(), "shm-cache-demo-"));

interface Event {
  event: string;
  label: string;
  runtime: string;
  pid: number;
  at: number;
  [key: string]: unknown;
}

const plan: Array<[string, "deno" | "bun", number, string?]> = [
  ["A", "deno", 3000],
  ["B", "bun", 3000],
  ["C", "deno", 3000],
  ["V", "bun", 400, "victim"],
];

const events: Event[] = [];
const children = plan.map(([label, runtime, requests, role]) => {
  const bin = join(root, "node_modules/.bin", runtime);
  const args = runtime === "deno" ? ["run", "-A", "--no-check", worker] : [worker];
  const child = spawn(bin, [...args, dir, label, String(requests), ...(role ? [role] : [])], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let buf = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith("{")) onEvent(JSON.parse(line) as Event);
    }
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return { label, runtime, child, exited };
});

let killedAt = 0;
function onEvent(e: Event): void {
  events.push(e);
  if (e.event === "ready") {
    console.log(`process ${e.label} (${e.runtime}, pid ${e.pid}) opened the cache`);
  }
  if (e.event === "locked") {
    console.log(`process ${e.label} (pid ${e.pid}) took the writer lock and holds it...`);
    setTimeout(() => {
      killedAt = Date.now();
      process.kill(e.pid, "SIGKILL");
      console.log(`process ${e.label} SIGKILLed while holding the writer lock`);
    }, 300);
  }
  if (e.event === "slow-set") {
    const after = killedAt ? `, ${e.at - killedAt} ms after the kill` : "";
    console.log(
      `process ${e.label} (${e.runtime}) waited ${e.ms} ms for the lock, then got it${after}`,
    );
  }
}

const deadline = setTimeout(() => {
  console.error("demo: a process did not finish within 60 s; stopping");
  for (const c of children) c.child.kill("SIGKILL");
}, 60_000);
await Promise.all(children.map((c) => c.exited));
clearTimeout(deadline);

console.log("\nprocess  runtime  requests  hits  misses  computed  slowest set");
for (const e of events.filter((e) => e.event === "done")) {
  console.log(
    `${e.label.padEnd(8)} ${e.runtime.padEnd(8)} ${String(e.requests).padStart(8)} ${
      String(e.hits).padStart(5)
    } ${String(e.misses).padStart(7)} ${String(e.computed).padStart(9)} ${
      String(e.slowestSetMs).padStart(9)
    } ms`,
  );
}
const victim = events.find((e) => e.event === "locked");
console.log(`process ${victim?.label ?? "V"} was killed: no "done" line`);

using cache = SharedCache.open("demo", demoOptions(dir));
const s = cache.stats();
const check = cache.verify();
console.log(
  `\nshared: ${s.size} entries, ${s.sets} sets, ${s.recoveries} lock recovery, ${s.rebuilds} rebuilds; verify: ${
    check.ok ? "ok" : check.problems.join("; ")
  }`,
);
console.log(`the dead process's last write survived: victim = ${cache.get("victim")}`);
cache.close();
SharedCache.destroy("demo", { dir });
rmSync(dir, { recursive: true, force: true });
