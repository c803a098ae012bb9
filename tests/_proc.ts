/**
 * Child processes for multi-process tests: spawn a fixture under Deno or
 * Bun, wait (bounded) for a line it prints, kill with real signals, clean
 * up. Every wait has a deadline; `Children.killAll` runs in `finally`.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../", import.meta.url));
export const fixture = join(root, "tests/fixtures/child.ts");
export type Runtime = "deno" | "bun";

export function runtimeCommand(
  runtime: Runtime,
  script: string,
  args: string[],
): [string, string[]] {
  const bin = join(root, "node_modules/.bin", runtime);
  return runtime === "deno"
    ? [bin, ["run", "-A", "--no-check", script, ...args]]
    : [bin, [script, ...args]];
}

/** A running child with its stdout split into lines. */
export class Child {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  #waiters: Array<() => void> = [];
  #exited = false;
  stderr = "";
  exited: Promise<{ code: number | null; signal: string | null }>;

  /** Runs `script` (default: tests/fixtures/child.ts) under `runtime` with `args`. */
  constructor(
    runtime: Runtime,
    args: string[],
    env: Record<string, string> = {},
    script: string = fixture,
  ) {
    const [cmd, argv] = runtimeCommand(runtime, script, args);
    // Children inherit SHM_CACHE_LIB: the test build with its fault points.
    this.proc = spawn(cmd, argv, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    let buf = "";
    this.proc.stdout!.setEncoding("utf8");
    this.proc.stdout!.on("data", (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    this.proc.stderr!.setEncoding("utf8");
    this.proc.stderr!.on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    // "close", not "exit": the exit event may come before the last of the
    // child's output has been read, and a line it printed just before
    // exiting would then look never printed.
    this.exited = new Promise((resolve) => {
      this.proc.on("close", (code, signal) => {
        this.#exited = true;
        for (const w of this.#waiters.splice(0)) w();
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Resolves with the first line matching `prefix` (removed from the queue), or rejects at the deadline. */
  async line(prefix: string, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.lines.findIndex((l) => l.startsWith(prefix));
      if (i >= 0) return this.lines.splice(i, 1)[0];
      if (this.#exited) {
        throw new Error(`child ${this.pid} exited before printing ${prefix}: ${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `child ${this.pid} did not print ${prefix} within ${timeoutMs} ms; stderr: ${this.stderr}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Parses the JSON after `prefix`. */
  async json<T = unknown>(prefix: string, timeoutMs?: number): Promise<T> {
    const line = await this.line(prefix, timeoutMs);
    return JSON.parse(line.slice(prefix.length).trim()) as T;
  }

  /** Sends a real signal. Not `ChildProcess#kill`: Deno's marks a child as killed after SIGSTOP and then drops later signals. */
  kill(signal: NodeJS.Signals): void {
    if (this.#exited) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** Waits for exit, bounded; SIGKILLs at the deadline. */
  async wait(timeoutMs = 20_000): Promise<{ code: number | null; signal: string | null }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) =>
      timer = setTimeout(() => resolve("timeout"), timeoutMs)
    );
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (r === "timeout") {
      this.kill("SIGKILL");
      throw new Error(
        `child ${this.pid} did not exit within ${timeoutMs} ms; stderr: ${this.stderr}`,
      );
    }
    return r;
  }
}

/** Tracks children and a temp directory; `cleanup()` kills and removes all. */
export class Scope {
  readonly children: Child[] = [];
  readonly dir: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "shmc-test-"));
  }

  spawn(runtime: Runtime, args: string[], env?: Record<string, string>): Child {
    const child = new Child(runtime, args, env);
    this.children.push(child);
    return child;
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) {
      c.kill("SIGCONT");
      c.kill("SIGKILL");
    }
    await Promise.all(
      this.children.map((c) => Promise.race([c.exited, new Promise((r) => setTimeout(r, 5000))])),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
