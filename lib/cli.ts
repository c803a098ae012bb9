#!/usr/bin/env bun
/**
 * `shm-cache`: the operator's command line. Lists caches, prints their
 * counters summed over every process (also as Prometheus text), reads a
 * key, verifies, clears and destroys a cache, all without knowing its
 * geometry. Runs under Bun (`bun lib/cli.ts ls`) and Deno
 * (`deno run --allow-ffi --allow-read --allow-env lib/cli.ts ls`).
 *
 * Exit codes: 0 ok, 1 failed, 2 bad usage.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = main(["stats", "sessions", "--json"]);
 * ```
 *
 * @module
 */

import process from "node:process";
import { type CommandSpec, parse, usage, UsageError } from "./_cli_args.ts";
import { COMMANDS, type Output } from "./_cli_commands.ts";

export type { Output };

const NAME_WIDTH = 10;

function overview(): string {
  const lines = Object.values(COMMANDS).map(({ spec }) =>
    `  ${spec.name.padEnd(NAME_WIDTH)}${spec.summary}`
  );
  return [
    "usage: shm-cache <command> [options]",
    "",
    "Inspect and manage shm-cache caches (shared-memory caches for Deno and Bun).",
    "",
    "commands:",
    ...lines,
    "",
    "`shm-cache <command> --help` describes a command. Exit codes: 0 ok, 1 failed, 2 bad usage.",
  ].join("\n");
}

const consoleOutput: Output = {
  out: (text) => console.log(text),
  err: (text) => console.error(text),
};

/**
 * Runs the CLI on `argv` (the arguments after the program name) and
 * returns the exit code: 0 ok, 1 failed, 2 bad usage.
 *
 * @param argv The command and its arguments, e.g. `["ls", "--json"]`.
 * @param io Where to write (default: stdout and stderr).
 * @returns The exit code.
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * main(["--help"]); // 0, after printing the commands
 * ```
 */
export function main(argv: string[], io: Output = consoleOutput): number {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    const topic = command === "help" ? rest[0] : undefined;
    if (topic !== undefined && COMMANDS[topic] !== undefined) {
      io.out(usage(COMMANDS[topic].spec));
      return 0;
    }
    if (topic !== undefined) {
      io.err(`shm-cache: unknown command ${JSON.stringify(topic)}\n\n${overview()}`);
      return 2;
    }
    if (command === undefined) {
      io.err(overview());
      return 2;
    }
    io.out(overview());
    return 0;
  }
  const cmd = COMMANDS[command];
  if (cmd === undefined) {
    io.err(`shm-cache: unknown command ${JSON.stringify(command)}\n\n${overview()}`);
    return 2;
  }
  return run(cmd.spec, (parsed) => cmd.run(parsed, io), rest, io);
}

function run(
  spec: CommandSpec,
  body: (
    parsed: { values: Record<string, string | boolean | undefined>; args: string[] },
  ) => number,
  argv: string[],
  io: Output,
): number {
  try {
    const parsed = parse(spec, argv);
    if (parsed.help) {
      io.out(usage(spec));
      return 0;
    }
    return body(parsed);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`shm-cache ${spec.name}: ${e.message}\n\n${usage(spec)}`);
      return 2;
    }
    // A name or an option value the library refuses is bad usage too.
    if (e instanceof RangeError || e instanceof TypeError) {
      io.err(`shm-cache ${spec.name}: ${e.message}`);
      return 2;
    }
    const code = (e as { code?: string }).code;
    io.err(`shm-cache ${spec.name}: ${code ? `${code}: ` : ""}${(e as Error).message ?? e}`);
    return 1;
  }
}

if (import.meta.main) {
  process.exitCode = main(process.argv.slice(2));
}
